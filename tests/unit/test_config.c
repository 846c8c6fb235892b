/* test_config.c - defaults, environment, flags and the CORS allow-list
 * (common/config.c).
 *
 * Every test starts from an environment without NOVA_* variables, so the
 * defaults are the ones README.md documents. Error messages from rejected
 * values are printed on stderr by design. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/config.h"

/* Remove every NOVA_* variable (names copied first: unsetenv edits environ). */
static int clear_nova_env(void **state)
{
    (void)state;
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "NOVA_", 5)) continue;
            size_t len = strcspn(*e, "=");
            if (len >= sizeof name) return -1;
            memcpy(name, *e, len);
            name[len] = '\0';
            break;
        }
        if (!name[0]) return 0;
        if (unsetenv(name)) return -1;
    }
}

static void test_defaults(void **state)
{
    (void)state;
    nova_config cfg;
    assert_int_equal(config_load(&cfg), 0);
    assert_string_equal(cfg.db_path, "data/nova.db");
    assert_string_equal(cfg.synchronous, "NORMAL");
    assert_int_equal(cfg.busy_timeout_ms, 5000);
    assert_int_equal(cfg.pwhash_opslimit, 2);
    assert_int_equal(cfg.pwhash_memlimit, 64L * 1024 * 1024);
    assert_int_equal(cfg.session_idle, 14L * 24 * 3600);
    assert_int_equal(cfg.session_max_age, 90L * 24 * 3600);
    assert_int_equal(cfg.session_touch, 60);
    assert_false(cfg.cookie_secure);
    assert_string_equal(cfg.cookie_samesite, "Lax");
    assert_string_equal(cfg.cors_origins, "");
    assert_int_equal(cfg.body_limit, 1048576);
    assert_int_equal(cfg.json_max_depth, 32);
    assert_string_equal(cfg.api_socket, "");
    assert_int_equal(cfg.api_workers, 4);
    assert_string_equal(cfg.rt_listen, "data/run/realtime.sock");
    assert_int_equal(cfg.ws_max_frame, 131072);
    assert_int_equal(cfg.ws_max_queue, 4194304);
    assert_int_equal(cfg.ws_ping_interval, 30);
    assert_int_equal(cfg.outbox_poll_ms, 10);
    assert_int_equal(cfg.outbox_batch, 512);
    assert_int_equal(cfg.outbox_retention, 86400);
    assert_string_equal(cfg.wake_socket, "");
    assert_int_equal(cfg.log_level, 1);
    config_free(&cfg);
}

static void test_environment_overrides(void **state)
{
    (void)state;
    assert_int_equal(setenv("NOVA_BODY_LIMIT", "2048", 1), 0);
    assert_int_equal(setenv("NOVA_DB", "/tmp/other.db", 1), 0);
    assert_int_equal(setenv("NOVA_COOKIE_SECURE", "1", 1), 0);
    assert_int_equal(setenv("NOVA_COOKIE_SAMESITE", "None", 1), 0);
    assert_int_equal(setenv("NOVA_CORS_ORIGINS", "https://a.example", 1), 0);
    assert_int_equal(setenv("NOVA_SYNCHRONOUS", "FULL", 1), 0);
    assert_int_equal(setenv("NOVA_PWHASH_MEMLIMIT", "4294967296", 1), 0);
    nova_config cfg;
    assert_int_equal(config_load(&cfg), 0);
    assert_int_equal(cfg.body_limit, 2048);
    assert_string_equal(cfg.db_path, "/tmp/other.db");
    assert_true(cfg.cookie_secure);
    assert_string_equal(cfg.cookie_samesite, "None");
    assert_string_equal(cfg.cors_origins, "https://a.example");
    assert_string_equal(cfg.synchronous, "FULL");
    assert_int_equal(cfg.pwhash_memlimit, 4294967296L);
    /* the rest keep their defaults */
    assert_int_equal(cfg.api_workers, 4);
    assert_int_equal(cfg.json_max_depth, 32);
    config_free(&cfg);
}

/* config_load must refuse NOVA_<name>=value. */
static void expect_env_rejected(const char *name, const char *value)
{
    assert_int_equal(setenv(name, value, 1), 0);
    nova_config cfg;
    int rc = config_load(&cfg);
    config_free(&cfg); /* whatever was loaded before the failure */
    unsetenv(name);
    if (rc != -1) fail_msg("%s=\"%s\": config_load returned %d, want -1", name, value, rc);
}

static void test_environment_rejects_bad_values(void **state)
{
    (void)state;
    expect_env_rejected("NOVA_BODY_LIMIT", "-1");
    expect_env_rejected("NOVA_BODY_LIMIT", "1023"); /* below the minimum */
    expect_env_rejected("NOVA_BODY_LIMIT", "1073741825");
    expect_env_rejected("NOVA_BODY_LIMIT", "");
    expect_env_rejected("NOVA_BODY_LIMIT", "abc");
    expect_env_rejected("NOVA_BODY_LIMIT", "1024x");
    expect_env_rejected("NOVA_BODY_LIMIT", "1.5e6");
    expect_env_rejected("NOVA_BODY_LIMIT", "99999999999999999999");
    expect_env_rejected("NOVA_API_WORKERS", "0");
    expect_env_rejected("NOVA_LOG_LEVEL", "3");
    expect_env_rejected("NOVA_JSON_MAX_DEPTH", "-32");
    expect_env_rejected("NOVA_PWHASH_MEMLIMIT", "8191");
    expect_env_rejected("NOVA_COOKIE_SECURE", "maybe");
    expect_env_rejected("NOVA_COOKIE_SECURE", "2");
    expect_env_rejected("NOVA_SYNCHRONOUS", "OFF");
    expect_env_rejected("NOVA_COOKIE_SAMESITE", "lax");
    expect_env_rejected("NOVA_DB", "");

    /* SameSite=None without Secure: each value is fine alone, the pair is
     * refused by config_check (after flags could still add Secure). */
    assert_int_equal(setenv("NOVA_COOKIE_SAMESITE", "None", 1), 0);
    nova_config none;
    assert_int_equal(config_load(&none), 0);
    assert_int_equal(config_check(&none), -1);
    none.cookie_secure = true;
    assert_int_equal(config_check(&none), 0);
    config_free(&none);
    unsetenv("NOVA_COOKIE_SAMESITE");

    /* the bounds themselves are fine */
    assert_int_equal(setenv("NOVA_BODY_LIMIT", "1024", 1), 0);
    assert_int_equal(setenv("NOVA_LOG_LEVEL", "0", 1), 0);
    assert_int_equal(setenv("NOVA_SESSION_TOUCH", "0", 1), 0);
    nova_config cfg;
    assert_int_equal(config_load(&cfg), 0);
    assert_int_equal(cfg.body_limit, 1024);
    assert_int_equal(cfg.log_level, 0);
    assert_int_equal(cfg.session_touch, 0);
    config_free(&cfg);
}

/* A loaded config for the flag tests, freed by free_config. */
static int load_config(void **state)
{
    if (clear_nova_env(state)) return -1;
    nova_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg || config_load(cfg)) {
        free(cfg);
        return -1;
    }
    *state = cfg;
    return 0;
}

static int free_config(void **state)
{
    config_free(*state);
    free(*state);
    return 0;
}

static void test_flag_with_separate_value(void **state)
{
    nova_config *cfg = *state;
    char *argv[] = {"nova-api", "--body-limit", "4096", "--db", "x.db", "--log-level", "2", NULL};
    int argc = 7, i = 1;
    assert_int_equal(config_parse_flag(cfg, argc, argv, &i), 1);
    assert_int_equal(i, 2); /* at the value: the caller's loop steps past it */
    assert_int_equal(cfg->body_limit, 4096);
    i = 3;
    assert_int_equal(config_parse_flag(cfg, argc, argv, &i), 1);
    assert_int_equal(i, 4);
    assert_string_equal(cfg->db_path, "x.db");
    i = 5;
    assert_int_equal(config_parse_flag(cfg, argc, argv, &i), 1);
    assert_int_equal(i, 6);
    assert_int_equal(cfg->log_level, 2);
}

static void test_flag_with_equals(void **state)
{
    nova_config *cfg = *state;
    char *argv[] = {"nova-api",  "--workers=8", "--cors-origins=https://a.example, https://b",
                    "--socket=", "--db=a=b.db", NULL};
    int argc = 5;
    for (int i = 1; i < argc; i++) {
        int at = i;
        assert_int_equal(config_parse_flag(cfg, argc, argv, &i), 1);
        assert_int_equal(i, at); /* the value was part of the flag */
    }
    assert_int_equal(cfg->api_workers, 8);
    assert_string_equal(cfg->cors_origins, "https://a.example, https://b");
    assert_string_equal(cfg->api_socket, "");
    assert_string_equal(cfg->db_path, "a=b.db");
}

static void test_flag_bool(void **state)
{
    nova_config *cfg = *state;
    char *argv[] = {"nova-api", "--cookie-secure",   "--workers",
                    "2",        "--cookie-secure=0", "--cookie-secure",
                    "yes",      "--cookie-secure",   NULL};
    int argc = 8, i = 1;
    /* followed by another flag: no value taken */
    assert_int_equal(config_parse_flag(cfg, argc, argv, &i), 1);
    assert_int_equal(i, 1);
    assert_true(cfg->cookie_secure);
    i = 4;
    assert_int_equal(config_parse_flag(cfg, argc, argv, &i), 1);
    assert_false(cfg->cookie_secure);
    i = 5;
    assert_int_equal(config_parse_flag(cfg, argc, argv, &i), 1);
    assert_int_equal(i, 6);
    assert_true(cfg->cookie_secure);
    cfg->cookie_secure = false;
    i = 7; /* last argument */
    assert_int_equal(config_parse_flag(cfg, argc, argv, &i), 1);
    assert_int_equal(i, 7);
    assert_true(cfg->cookie_secure);
}

/* Flags win over the environment. */
static void test_flag_overrides_environment(void **state)
{
    (void)state;
    assert_int_equal(setenv("NOVA_API_WORKERS", "3", 1), 0);
    nova_config cfg;
    assert_int_equal(config_load(&cfg), 0);
    assert_int_equal(cfg.api_workers, 3);
    char *argv[] = {"nova-api", "--workers", "5", NULL};
    int i = 1;
    assert_int_equal(config_parse_flag(&cfg, 3, argv, &i), 1);
    assert_int_equal(cfg.api_workers, 5);
    config_free(&cfg);
}

static void test_flag_unknown(void **state)
{
    nova_config *cfg = *state;
    char *argv[] = {"nova-api", "--no-such-flag", "--no-such-flag=1", "positional",  "-w", "--",
                    "--body",   "--body-limitx",  "--BODY-LIMIT",     "-body-limit", NULL};
    int argc = 10;
    for (int i = 1; i < argc; i++) {
        int at = i;
        int rc = config_parse_flag(cfg, argc, argv, &i);
        if (rc != 0) fail_msg("\"%s\": config_parse_flag returned %d, want 0", argv[at], rc);
        assert_int_equal(i, at);
    }
    assert_int_equal(cfg->body_limit, 1048576);
}

/* config_parse_flag must answer -1 to argv[1..] on a fresh config. */
static void expect_flag_rejected(int argc, char **argv)
{
    nova_config cfg;
    assert_int_equal(config_load(&cfg), 0);
    int i = 1;
    int rc = config_parse_flag(&cfg, argc, argv, &i);
    config_free(&cfg);
    if (rc != -1) fail_msg("\"%s\": config_parse_flag returned %d, want -1", argv[1], rc);
}

static void test_flag_bad_values(void **state)
{
    nova_config *cfg = *state;
    char *neg[] = {"p", "--body-limit", "-1", NULL};
    expect_flag_rejected(3, neg);
    char *neg_eq[] = {"p", "--body-limit=-1", NULL};
    expect_flag_rejected(2, neg_eq);
    char *word[] = {"p", "--workers", "many", NULL};
    expect_flag_rejected(3, word);
    char *zero[] = {"p", "--workers=0", NULL};
    expect_flag_rejected(2, zero);
    char *big[] = {"p", "--workers=1025", NULL};
    expect_flag_rejected(2, big);
    char *empty[] = {"p", "--log-level=", NULL};
    expect_flag_rejected(2, empty);
    char *missing[] = {"p", "--body-limit", NULL}; /* no value at the end */
    expect_flag_rejected(2, missing);
    char *sync[] = {"p", "--synchronous", "OFF", NULL};
    expect_flag_rejected(3, sync);
    char *samesite[] = {"p", "--cookie-samesite=strict", NULL};
    expect_flag_rejected(2, samesite);
    char *secure[] = {"p", "--cookie-secure", "maybe", NULL};
    expect_flag_rejected(3, secure);
    char *db[] = {"p", "--db=", NULL};
    expect_flag_rejected(2, db);

    /* a rejected number leaves the setting as it was */
    int i = 1;
    assert_int_equal(config_parse_flag(cfg, 3, neg, &i), -1);
    assert_int_equal(cfg->body_limit, 1048576);
    i = 1;
    assert_int_equal(config_parse_flag(cfg, 2, big, &i), -1);
    assert_int_equal(cfg->api_workers, 4);
}

/* SameSite=None needs Secure; as command-line flags the two must work in
 * either order, like they do as environment variables. */
static void test_flag_samesite_none_with_secure(void **state)
{
    nova_config *cfg = *state;
    char *secure_first[] = {"p", "--cookie-secure", "--cookie-samesite", "None", NULL};
    int i = 1;
    assert_int_equal(config_parse_flag(cfg, 4, secure_first, &i), 1);
    i++;
    assert_int_equal(config_parse_flag(cfg, 4, secure_first, &i), 1);
    assert_true(cfg->cookie_secure);
    assert_string_equal(cfg->cookie_samesite, "None");

    nova_config other;
    assert_int_equal(config_load(&other), 0);
    char *none_first[] = {"p", "--cookie-samesite", "None", "--cookie-secure", NULL};
    int rc_samesite, rc_secure;
    i = 1;
    rc_samesite = config_parse_flag(&other, 4, none_first, &i);
    i++;
    rc_secure = config_parse_flag(&other, 4, none_first, &i);
    bool secure = other.cookie_secure;
    config_free(&other);
    assert_int_equal(rc_samesite, 1);
    assert_int_equal(rc_secure, 1);
    assert_true(secure);
}

static void test_origin_allowed(void **state)
{
    nova_config *cfg = *state;
    assert_false(config_origin_allowed(cfg, "https://a.example")); /* default: none */
    assert_false(config_origin_allowed(cfg, ""));

    free(cfg->cors_origins);
    cfg->cors_origins = strdup("https://a.example, https://b.example ,  http://c.example:8443");
    assert_non_null(cfg->cors_origins);
    assert_true(config_origin_allowed(cfg, "https://a.example"));
    assert_true(config_origin_allowed(cfg, "https://b.example"));
    assert_true(config_origin_allowed(cfg, "http://c.example:8443"));

    assert_false(config_origin_allowed(cfg, ""));
    assert_false(config_origin_allowed(cfg, "https://d.example"));
    assert_false(config_origin_allowed(cfg, "https://a.exampl"));       /* prefix */
    assert_false(config_origin_allowed(cfg, "https://a.example.evil")); /* extension */
    assert_false(config_origin_allowed(cfg, "http://a.example"));       /* other scheme */
    assert_false(config_origin_allowed(cfg, "http://c.example"));       /* other port */
    assert_false(config_origin_allowed(cfg, "https://a.example "));
    assert_false(config_origin_allowed(cfg, " https://b.example"));
    assert_false(config_origin_allowed(cfg, "https://a.example, https://b.example"));
    assert_false(config_origin_allowed(cfg, "example"));
    assert_false(config_origin_allowed(cfg, "null"));

    /* stray commas and spaces around the list are harmless */
    free(cfg->cors_origins);
    cfg->cors_origins = strdup(" ,https://a.example,, ,");
    assert_non_null(cfg->cors_origins);
    assert_true(config_origin_allowed(cfg, "https://a.example"));
    assert_false(config_origin_allowed(cfg, ""));
    assert_false(config_origin_allowed(cfg, ","));
}

/* config_free releases every string (LeakSanitizer checks) and can be
 * called again. */
static void test_config_free(void **state)
{
    (void)state;
    nova_config cfg;
    assert_int_equal(config_load(&cfg), 0);
    char *argv[] = {"p", "--db", "a.db", "--db", "b.db", "--wake-socket=w.sock", NULL};
    for (int i = 1; i < 6; i++)
        assert_int_equal(config_parse_flag(&cfg, 6, argv, &i), 1);
    assert_string_equal(cfg.db_path, "b.db");
    config_free(&cfg);
    assert_null(cfg.db_path);
    assert_null(cfg.synchronous);
    assert_null(cfg.cookie_samesite);
    assert_null(cfg.cors_origins);
    assert_null(cfg.api_socket);
    assert_null(cfg.rt_listen);
    assert_null(cfg.wake_socket);
    config_free(&cfg);
}

/* --- the configuration file and config_init ------------------------------ */

static void usage_stub(FILE *out)
{
    fputs("usage\n", out);
}

/* Write text to a new temporary file; its path in path (64 bytes). */
static void write_file(char *path, const char *text)
{
    strcpy(path, "/tmp/nova-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* config_init with argv = {"prog", args..., NULL}. */
static int init_with(nova_config *cfg, int argc, char **args)
{
    char *argv[16] = {"prog"};
    for (int i = 0; i < argc; i++)
        argv[i + 1] = args[i];
    return config_init(cfg, "prog", argc + 1, argv, usage_stub, NULL);
}

static void test_file_is_read(void **state)
{
    (void)state;
    char path[64];
    write_file(path, "# Nova\n\n  db = /srv/nova.db\nws-max-frame=4096\r\n"
                     "cors-origins = \"https://a.example, https://b.example\"\n"
                     "cookie-secure = yes\n\t# indented comment\nwake-socket = \"\"\n");
    nova_config cfg;
    char *args[] = {"--config", path};
    assert_int_equal(init_with(&cfg, 2, args), 0);
    assert_string_equal(cfg.config_path, path);
    assert_string_equal(cfg.db_path, "/srv/nova.db");
    assert_int_equal(cfg.ws_max_frame, 4096);
    assert_string_equal(cfg.cors_origins, "https://a.example, https://b.example");
    assert_true(cfg.cookie_secure);
    assert_string_equal(cfg.wake_socket, "");
    assert_int_equal(cfg.body_limit, 1048576); /* not in the file: the default */
    config_free(&cfg);
    unlink(path);
}

/* flag over environment over file over default */
static void test_file_precedence(void **state)
{
    (void)state;
    char path[64];
    write_file(path, "db = from-file.db\nbody-limit = 2048\nws-max-frame = 4096\n");
    setenv("NOVA_CONFIG", path, 1);
    setenv("NOVA_BODY_LIMIT", "4096", 1);
    setenv("NOVA_DB", "from-env.db", 1);
    nova_config cfg;
    char *args[] = {"--db", "from-flag.db"};
    assert_int_equal(init_with(&cfg, 2, args), 0);
    assert_string_equal(cfg.db_path, "from-flag.db"); /* flag */
    assert_int_equal(cfg.body_limit, 4096);           /* environment */
    assert_int_equal(cfg.ws_max_frame, 4096);         /* file */
    assert_int_equal(cfg.json_max_depth, 32);         /* default */
    config_free(&cfg);
    unlink(path);
}

/* An unknown key or a bad value names the file and the line. */
static void test_file_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "db = x.db\nno-such-setting = 1\n", "\n\nws-max-frame = ten\n", "# ok\nbody-limit\n",
        "cookie-samesite = Sometimes\n",    "config = other.conf\n",    "ws-max-frame = 1\n",
    };
    static const int line_of[] = {2, 3, 2, 1, 1, 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[64], want[96];
        write_file(path, bad[i]);
        snprintf(want, sizeof want, "%s:%d: ", path, line_of[i]);
        fflush(stderr);
        FILE *saved = stderr, *capture = tmpfile();
        stderr = capture;
        nova_config cfg;
        char *args[] = {"--config", path};
        int rc = init_with(&cfg, 2, args);
        stderr = saved;
        char text[512] = "";
        rewind(capture);
        size_t n = fread(text, 1, sizeof text - 1, capture);
        text[n] = '\0';
        fclose(capture);
        unlink(path);
        if (rc != 2) fail_msg("%s: config_init gave %d, want 2", bad[i], rc);
        if (!strstr(text, want)) fail_msg("%s: \"%s\" does not name %s", bad[i], text, want);
    }
}

/* A named file must exist; the default one may be missing. */
static void test_file_missing(void **state)
{
    (void)state;
    nova_config cfg;
    char *args[] = {"--config", "/nonexistent/nova.conf"};
    assert_int_equal(init_with(&cfg, 2, args), 2);
    setenv("NOVA_CONFIG", "/nonexistent/nova.conf", 1);
    assert_int_equal(init_with(&cfg, 0, NULL), 2);
    setenv("NOVA_CONFIG", "", 1); /* none */
    assert_int_equal(init_with(&cfg, 0, NULL), 0);
    assert_string_equal(cfg.config_path, "");
    config_free(&cfg);
}

static void test_init_help_and_unknown(void **state)
{
    (void)state;
    setenv("NOVA_CONFIG", "", 1);
    nova_config cfg;
    char *help[] = {"--help"}, *bogus[] = {"--bogus"}, *bad[] = {"--ws-max-frame", "x"};
    assert_int_equal(init_with(&cfg, 1, help), 1);
    assert_int_equal(init_with(&cfg, 1, bogus), 2);
    assert_int_equal(init_with(&cfg, 2, bad), 2);
}

#define CONFIG_TEST(f) cmocka_unit_test_setup_teardown(f, clear_nova_env, clear_nova_env)
#define FLAG_TEST(f) cmocka_unit_test_setup_teardown(f, load_config, free_config)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CONFIG_TEST(test_defaults),
        CONFIG_TEST(test_environment_overrides),
        CONFIG_TEST(test_environment_rejects_bad_values),
        FLAG_TEST(test_flag_with_separate_value),
        FLAG_TEST(test_flag_with_equals),
        FLAG_TEST(test_flag_bool),
        CONFIG_TEST(test_flag_overrides_environment),
        FLAG_TEST(test_flag_unknown),
        FLAG_TEST(test_flag_bad_values),
        FLAG_TEST(test_flag_samesite_none_with_secure),
        FLAG_TEST(test_origin_allowed),
        CONFIG_TEST(test_config_free),
        CONFIG_TEST(test_file_is_read),
        CONFIG_TEST(test_file_precedence),
        CONFIG_TEST(test_file_errors),
        CONFIG_TEST(test_file_missing),
        CONFIG_TEST(test_init_help_and_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
