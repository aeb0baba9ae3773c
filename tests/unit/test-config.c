#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gateway/config.h"
#include "test.h"

static const char issue_example[] =
        "# comments are whole lines starting with # or ;\n"
        "[Gateway]\n"
        "# gateway id, used in topics\n"
        "Id=home-0042\n"
        "# SQLite files live here\n"
        "StateDirectory=/var/lib/homecare-gw\n"
        "[Uplink]\n"
        "# or mqtts://host:8883\n"
        "Broker=mqtt://127.0.0.1:1883\n"
        "CAFile=/etc/homecare-gw/ca.pem\n"
        "CertFile=/etc/homecare-gw/client.pem\n"
        "KeyFile=/etc/homecare-gw/client.key\n"
        "Username=home-0042\n"
        "PasswordFile=/etc/homecare-gw/broker-password\n"
        "[Store]\n"
        "# quota for the outbox\n"
        "MaxSize=256M\n"
        "[Simulation]\n"
        "# run the simulated home (see 6); Speed = simulated seconds per real second\n"
        "Enabled=yes\n"
        "Speed=1\n";

static int parse(const char *text, Config **ret, char **ret_error)
{
        FILE *f = fmemopen((void *)text, strlen(text), "r");
        int r = config_parse(f, "test.conf", ret, ret_error);
        fclose(f);
        return r;
}

static void test_issue_example(void)
{
        Config *c = NULL;
        char *err = NULL;
        CHECK(parse(issue_example, &c, &err) == 0);
        CHECK(err == NULL);
        if (!c)
                return;
        CHECK_STREQ(c->gateway_id, "home-0042");
        CHECK_STREQ(c->state_directory, "/var/lib/homecare-gw");
        CHECK_STREQ(c->broker, "mqtt://127.0.0.1:1883");
        CHECK_STREQ(c->broker_host, "127.0.0.1");
        CHECK(c->broker_port == 1883);
        CHECK(!c->broker_tls);
        CHECK_STREQ(c->ca_file, "/etc/homecare-gw/ca.pem");
        CHECK_STREQ(c->cert_file, "/etc/homecare-gw/client.pem");
        CHECK_STREQ(c->key_file, "/etc/homecare-gw/client.key");
        CHECK_STREQ(c->username, "home-0042");
        CHECK_STREQ(c->password_file, "/etc/homecare-gw/broker-password");
        CHECK(c->store_max_size == 256ULL << 20);
        CHECK(c->sim_enabled);
        CHECK(c->sim_speed == 1);
        config_free(c);
}

static void test_defaults_and_values(void)
{
        Config *c = NULL;
        CHECK(parse("[Gateway]\nId=x\n[Uplink]\nBroker=mqtts://broker.example.org\n", &c, NULL) == 0);
        if (!c)
                return;
        CHECK(c->broker_tls);
        CHECK(c->broker_port == 8883);
        CHECK_STREQ(c->broker_host, "broker.example.org");
        CHECK_STREQ(c->state_directory, "/var/lib/homecare-gw");
        CHECK(!c->sim_enabled);
        CHECK(c->store_max_size == 256ULL << 20);
        config_free(c);

        CHECK(parse("  ; leading space comment\n[Gateway]\n  Id = a_b-9  \n[Uplink]\nBroker=mqtt://[::1]:1999\n"
                    "[Simulation]\nSpeed=max\nEnabled=on\nStart=2026-03-02T07:00:00+01:00\n[Store]\nMaxSize=2G\n"
                    "CommitDelayMs=0\n",
                    &c, NULL) == 0);
        if (!c)
                return;
        CHECK_STREQ(c->gateway_id, "a_b-9");
        CHECK_STREQ(c->broker_host, "::1");
        CHECK(c->broker_port == 1999);
        CHECK(c->sim_speed == 0);
        CHECK(c->sim_enabled);
        CHECK(c->sim_start_usec == 1772431200LL * 1000000);
        CHECK(c->store_max_size == 2ULL << 30);
        CHECK(c->commit_delay_usec == 0);
        config_free(c);
}

/* Every error names file, line, key (where there is one) and what is wrong. */
static void test_errors(void)
{
        static const struct {
                const char *text;
                const char *expect; /* substring of the message */
        } cases[] = {
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h\n[Bogus]\n", "test.conf:5: unknown section [Bogus]"},
                {"[Gateway]\nId=x\nColour=blue\n", "test.conf:3: [Gateway] Colour: unknown key"},
                {"Id=x\n", "test.conf:1: Id= appears before any [Section]"},
                {"[Gateway]\nId\n", "test.conf:2: 'Id' is not a Key=Value assignment"},
                {"[Gateway\n", "test.conf:1: section header '[Gateway' is not of the form [Section]"},
                {"[Gateway] x\n", "is not of the form [Section]"},
                {"[Gateway \"a\"]\n", "test.conf:1: section [Gateway \"a\"] takes no label"},
                {"[Gateway]\nId=x\nId=y\n", "test.conf:3: [Gateway] Id: set twice (first on line 2)"},
                {"[Gateway]\nId=\n", "test.conf:2: [Gateway] Id: empty value"},
                {"[Gateway]\nId=home/1\n", "test.conf:2: [Gateway] Id: 'home/1' may only contain"},
                {"[Gateway]\nId=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", "longer than 64"},
                {"[Gateway]\nId=x\nStateDirectory=var/lib\n", "test.conf:3: [Gateway] StateDirectory: 'var/lib' is not an absolute path"},
                {"[Gateway]\nId=x\n", "test.conf:0: [Uplink] Broker: required key is missing (no [Uplink] section)"},
                {"[Uplink]\nBroker=mqtt://h\n", "test.conf:0: [Gateway] Id: required key is missing (no [Gateway] section)"},
                {"[Gateway]\nStateDirectory=/x\n[Uplink]\nBroker=mqtt://h\n", "test.conf:1: [Gateway] Id: required key is missing"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=http://h\n", "test.conf:4: [Uplink] Broker: 'http://h' must start with mqtt:// or mqtts://"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h:0\n", "[Uplink] Broker: 'mqtt://h:0' has an invalid port"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h:65536\n", "has an invalid port"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h:12x\n", "has an invalid port"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://:1883\n", "has no valid host name"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://[::1\n", "has an unclosed '['"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h\nCertFile=/c.pem\n", "[Uplink] KeyFile: CertFile= and KeyFile= go together"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h\nKeepaliveSec=1\n", "[Uplink] KeepaliveSec: 1 is out of range (5 to 3600)"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h\nMaxInflight=-1\n", "'-1' is not a whole number"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h\n[Store]\nMaxSize=lots\n", "test.conf:6: [Store] MaxSize: 'lots' is not a size"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h\n[Store]\nMaxSize=5Q\n", "has an unknown unit 'Q'"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h\n[Store]\nMaxSize=100K\n", "'100K' is too small (at least 1M)"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h\n[Store]\nMaxSize=99999999999999T\n", "is too large"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h\n[Simulation]\nEnabled=maybe\n", "test.conf:6: [Simulation] Enabled: 'maybe' is not a boolean"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h\n[Simulation]\nSpeed=fast\n", "'fast' is not a number or 'max'"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h\n[Simulation]\nSpeed=0\n", "0 is out of range"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h\n[Simulation]\nStart=yesterday\n", "'yesterday' is not an RFC 3339 time"},
                {"[Gateway]\nId=x\n[Uplink]\nBroker=mqtt://h\n[Simulation]\nSeed=12345678901234567890123\n", "not a whole number"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                Config *c = NULL;
                char *err = NULL;
                int r = parse(cases[i].text, &c, &err);
                CHECK(r < 0);
                CHECK(c == NULL);
                if (!err || !strstr(err, cases[i].expect)) {
                        fprintf(stderr, "case %zu: expected \"%s\", got \"%s\"\n", i, cases[i].expect,
                                err ? err : "(no error)");
                        test_failed_checks++;
                }
                free(err);
                config_free(c);
        }
}

static void test_nul_byte(void)
{
        static const char text[] = "[Gateway]\nId=x\0y\n";
        FILE *f = fmemopen((void *)text, sizeof text - 1, "r");
        Config *c = NULL;
        char *err = NULL;
        CHECK(config_parse(f, "nul.conf", &c, &err) < 0);
        CHECK(err && strstr(err, "nul.conf:2: line contains a NUL byte"));
        free(err);
        fclose(f);
}

static void test_load_missing_file(void)
{
        Config *c = NULL;
        char *err = NULL;
        CHECK(config_load("/nonexistent/gw.conf", &c, &err) == -ENOENT);
        CHECK(err && strstr(err, "/nonexistent/gw.conf: cannot open"));
        free(err);
}

static void test_password_file(void)
{
        char path[] = "/tmp/hcgw-pw-XXXXXX";
        int fd = mkstemp(path);
        Config c = {.password_file = path};
        char *pw = NULL;
        CHECK(fd >= 0);
        CHECK(write(fd, "s3cret\nignored\n", 15) == 15);
        close(fd);
        CHECK(config_read_password(&c, &pw) == 0);
        CHECK_STREQ(pw, "s3cret");
        free(pw);
        unlink(path);
        CHECK(config_read_password(&c, &pw) == -ENOENT);
}

TEST_MAIN(TEST(test_issue_example), TEST(test_defaults_and_values), TEST(test_errors), TEST(test_nul_byte),
          TEST(test_load_missing_file), TEST(test_password_file))
