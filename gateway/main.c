/* homecare-gw: the command line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/macro.h"
#include "gateway/config.h"
#include "gateway/cli-decode.h"
#include "gateway/cli-replay.h"
#include "gateway/manager.h"
#include "gateway/web-auth.h"

static void help(void)
{
        printf("Usage: homecare-gw COMMAND [OPTIONS]\n"
               "\n"
               "A home-care gateway: collects readings and events from the home's sensors,\n"
               "detects what needs a nurse, and forwards everything over MQTT.\n"
               "\n"
               "Commands:\n"
               "  run --config FILE       Run the gateway (as systemd's Type=notify service)\n"
               "  check-config FILE       Check a configuration file; exit 0 if it is valid\n"
               "  decode PROFILE HEX...   Decode what a device sends (see decode --help)\n"
               "  replay --config FILE [--until TIME] LOG.jsonl\n"
               "                          Run the rules over a recorded home log; print the alerts\n"
               "  setup-code --config FILE\n"
               "                          Print the technician's page's setup code\n"
               "  reset-password --config FILE\n"
               "                          Forget the page's password; print a new setup code\n"
               "\n"
               "Options:\n"
               "  -c, --config FILE       Configuration file (default /etc/homecare-gw/gateway.conf)\n"
               "  -v, --verbose           Log debug messages\n"
               "  -h, --help              Show this help\n"
               "      --version           Show the version\n");
}

static int cmd_check_config(const char *path)
{
        _cleanup_free_ char *error = NULL;
        Config *c = NULL;
        int r = config_load(path, &c, &error);
        if (r < 0) {
                fprintf(stderr, "%s\n", error ?: "out of memory");
                return EXIT_FAILURE;
        }
        printf("%s: OK (gateway %s, broker %s)\n", path, c->gateway_id, c->broker);
        config_free(c);
        return EXIT_SUCCESS;
}

static int cmd_run(const char *path)
{
        _cleanup_free_ char *error = NULL;
        Manager *m = NULL;
        Config *c = NULL;
        int r;

        r = config_load(path, &c, &error);
        if (r < 0) {
                log_error("Invalid configuration: %s", error ?: "out of memory");
                return EXIT_FAILURE;
        }
        r = manager_new(c, &m);
        if (r < 0) {
                log_error_errno(r, "Failed to set up: %m");
                return EXIT_FAILURE;
        }
        r = manager_start(m);
        if (r >= 0)
                r = manager_run(m);
        manager_free(m);
        return r < 0 ? EXIT_FAILURE : r;
}

/* The page's secrets live in StateDirectory=, which the gateway makes at its first start (as its own
 * user): made here by root, it would be root's. */
static int load_state_directory(const char *path, Config **ret)
{
        _cleanup_free_ char *error = NULL;
        Config *c = NULL;
        struct stat st;
        int r = config_load(path, &c, &error);

        if (r < 0) {
                fprintf(stderr, "%s\n", error ?: "out of memory");
                return EXIT_FAILURE;
        }
        if (stat(c->state_directory, &st) < 0 || !S_ISDIR(st.st_mode)) {
                fprintf(stderr, "StateDirectory=%s does not exist yet: start the gateway once first.\n",
                        c->state_directory);
                config_free(c);
                return EXIT_FAILURE;
        }
        *ret = c;
        return -1;
}

static int cmd_setup_code(const char *path)
{
        char code[WEB_SETUP_CODE_MAX];
        Config *c = NULL;
        int r = load_state_directory(path, &c);

        if (r >= 0)
                return r;
        r = web_setup_code_get(c->state_directory, code, NULL);
        if (r == -EEXIST)
                fprintf(stderr,
                        "The technician's page has a password: its setup code is spent. To set a new "
                        "password: homecare-gw reset-password --config %s\n",
                        path);
        else if (r < 0)
                fprintf(stderr, "Failed to read or make the setup code in %s: %s\n", c->state_directory,
                        strerror(-r));
        else
                printf("%s\n", code);
        explicit_bzero(code, sizeof code);
        config_free(c);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int cmd_reset_password(const char *path)
{
        char code[WEB_SETUP_CODE_MAX];
        Config *c = NULL;
        int r = load_state_directory(path, &c);

        if (r >= 0)
                return r;
        r = web_password_reset(c->state_directory, code);
        if (r < 0)
                fprintf(stderr, "Failed to reset the page's password in %s: %s\n", c->state_directory,
                        strerror(-r));
        else
                printf("The technician's page's password is forgotten (its sessions end too). New setup "
                       "code:\n%s\n",
                       code);
        explicit_bzero(code, sizeof code);
        config_free(c);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

enum { ARG_VERSION = 0x100 };
static const struct option options[] = {
    {"config", required_argument, NULL, 'c'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, ARG_VERSION},
    {},
};

/* Returns -1 to go on, or an exit code. */
static int parse_options(int argc, char *argv[], const char *optstring, const char **config)
{
        int c;
        while ((c = getopt_long(argc, argv, optstring, options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        *config = optarg;
                        break;
                case 'v':
                        log_set_max_level(LOG_DEBUG);
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("homecare-gw %s\n", HCGW_VERSION);
                        return EXIT_SUCCESS;
                default:
                        return 2;
                }
        return -1;
}

int main(int argc, char *argv[])
{
        const char *config = "/etc/homecare-gw/gateway.conf", *command;
        int r;

        /* The journal with fields when systemd gave us its stream as stderr, else "<N>" lines. */
        log_open();

        /* decode and replay have options of their own. */
        if (argc > 1 && streq(argv[1], "decode"))
                return cli_decode(argc - 1, argv + 1);
        if (argc > 1 && streq(argv[1], "replay"))
                return cli_replay(argc - 1, argv + 1);
        /* "+": stop at the command; its own options follow it (homecare-gw run --config FILE). */
        if ((r = parse_options(argc, argv, "+c:vh", &config)) >= 0)
                return r;
        if (optind >= argc) {
                help();
                return 2;
        }
        command = argv[optind++];
        if ((r = parse_options(argc, argv, "c:vh", &config)) >= 0)
                return r;

        if (streq(command, "run")) {
                if (optind != argc) {
                        fprintf(stderr, "run takes no arguments besides --config FILE\n");
                        return 2;
                }
                return cmd_run(config);
        }
        if (streq(command, "check-config")) {
                if (optind < argc)
                        config = argv[optind++];
                if (optind != argc) {
                        fprintf(stderr, "check-config takes one FILE\n");
                        return 2;
                }
                return cmd_check_config(config);
        }
        if (streq(command, "setup-code") || streq(command, "reset-password")) {
                if (optind != argc) {
                        fprintf(stderr, "%s takes no arguments besides --config FILE\n", command);
                        return 2;
                }
                return streq(command, "setup-code") ? cmd_setup_code(config) : cmd_reset_password(config);
        }
        fprintf(stderr, "Unknown command '%s'. See homecare-gw --help.\n", command);
        return 2;
}
