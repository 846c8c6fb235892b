-- Nova schema, version 10: full-text search (docs/API.md "[ext] Search").
--
-- A GIN index over the text of every message that is not recalled, in the
-- text search configuration nova_search: 'simple' (no stemming, no stop
-- words: a chat is in every language) with unaccent first, so that case
-- and accents fold as in SQLite's unicode61 remove_diacritics. unaccent is
-- a trusted extension (PostgreSQL 13 and later): the database owner may
-- create it; Debian's server package ships it. Queries use the same
-- expression and predicate, so the planner uses the index.
CREATE EXTENSION IF NOT EXISTS unaccent;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'nova_search') THEN
        CREATE TEXT SEARCH CONFIGURATION nova_search (COPY = pg_catalog.simple);
        ALTER TEXT SEARCH CONFIGURATION nova_search
            ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
            WITH unaccent, simple;
    END IF;
END
$$;

CREATE INDEX IF NOT EXISTS messages_search ON messages
    USING gin (to_tsvector('nova_search', content)) WHERE recalled = 0;
