-- Nova schema, version 10: full-text search (docs/API.md "[ext] Search").
--
-- Every message keeps its words as a tsvector (search_words, generated
-- from nova_search_text(content) in the text search configuration nova_search: 'simple', no
-- stemming and no stop words, since a chat is in every language, with
-- unaccent first, so that case and accents fold as in SQLite's unicode61
-- remove_diacritics), under a GIN index of the messages that are not
-- recalled. Stored rather than an index expression: ts_rank reads it
-- instead of parsing the text again, and ANALYZE keeps statistics of its
-- words, so that the planner knows a word that is in every message from a
-- rare one (measured, docs/BENCHMARKS.md: 1.5 s -> 0.7 ms for the newest
-- page of a word in every message). Adding it rewrites the table once.
-- unaccent is a trusted extension (PostgreSQL 13 and later): the database
-- owner may create it; Debian's server package ships it. IF NOT EXISTS: a
-- database set back to an older version migrates again.
CREATE EXTENSION IF NOT EXISTS unaccent;

-- The text as the index reads it: every character that is no letter or
-- digit becomes one space, so that e-mail, 3.14 and bob@example.com are
-- words of their own as in SQLite's unicode61 (PostgreSQL's parser would
-- keep each whole), and code point i of it is code point i of the text
-- (the snippets' highlights carry over by position, common/search.c).
CREATE OR REPLACE FUNCTION nova_search_text(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT regexp_replace($1, '[^[:alnum:]]', ' ', 'g') $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'nova_search') THEN
        CREATE TEXT SEARCH CONFIGURATION nova_search (COPY = pg_catalog.simple);
        ALTER TEXT SEARCH CONFIGURATION nova_search
            ALTER MAPPING FOR asciiword, word, numword, asciihword, hword, numhword,
                hword_asciipart, hword_part, hword_numpart
            WITH unaccent, simple;
    END IF;
END
$$;

ALTER TABLE messages ADD COLUMN IF NOT EXISTS search_words tsvector
    GENERATED ALWAYS AS (to_tsvector('nova_search', nova_search_text(content))) STORED;
CREATE INDEX IF NOT EXISTS messages_search ON messages USING gin (search_words)
    WHERE recalled = 0;
