/* The status object (gateway/status.c) from real modules: an outbox and a sensor store in a
 * temporary directory, wired inputs through their test seam, a BLE client that is not started.
 * The LWT is byte-exact (it was written by hand before, and the service may compare it); the full
 * status has every field of docs/uplink.md with its type, and never fails on odd text. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "gateway/config.h"
#include "gateway/devices.h"
#include "gateway/status.h"
#include "test-util.h"
#include "test.h"

static char dir[] = "/tmp/hcgw-status-XXXXXX";

static const char conf[] = "[Gateway]\n"
                           "Id=gw-test\n"
                           "StateDirectory=/tmp\n"
                           "[Uplink]\n"
                           "Broker=mqtt://127.0.0.1:1883\n"
                           "[Sensor \"strap\"]\n"
                           "Type=heart-rate\n"
                           "Address=A4:C1:38:00:00:01\n"
                           "[Sensor \"climate\"]\n"
                           "Type=bthome\n"
                           "Address=A4:C1:38:00:00:02\n";

static Config *config(void)
{
        Config *c = test_config_from_text(conf, CONFIG_DAEMON);
        CHECK(c);
        return c;
}

static void on_event(void *userdata, const Event *e)
{
}

static void on_frame(void *userdata, const char *sensor, uint16_t uuid16, const uint8_t *buf, size_t len,
                     int64_t time_usec)
{
}

/* The LWT (fixed at connect time, no figures) and a status before the store is open. */
static void test_lwt_is_byte_exact(void)
{
        Config *c = config();
        char *s;

        s = status_format(&(StatusSources){.config = c}, "offline", "connection lost", false);
        CHECK_STREQ(s, "{\"state\":\"offline\",\"gateway\":\"gw-test\",\"version\":\"" HCGW_VERSION
                       "\",\"reason\":\"connection lost\"}");
        free(s);
        /* full, but no store yet: the same fields, without a reason. */
        s = status_format(&(StatusSources){.config = c, .uptime_usec = 5000000}, "online", NULL, true);
        CHECK_STREQ(s, "{\"state\":\"online\",\"gateway\":\"gw-test\",\"version\":\"" HCGW_VERSION "\"}");
        free(s);
        config_free(c);
}

static bool is_type(json_t *o, const char *path, json_type t)
{
        char buf[128], *save = NULL;
        json_t *j = o;

        snprintf(buf, sizeof buf, "%s", path);
        for (char *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
                j = json_object_get(j, k);
        if (!j || json_typeof(j) != t) {
                fprintf(stderr, "status: %s is missing or not of type %d\n", path, (int)t);
                return false;
        }
        return true;
}

static void test_full_status_has_every_field(void)
{
        char path[300], *err = NULL, *s;
        const GpioInputConfig in[] = {
            {"front-door", "gpiochip0", "17", GPIO_DOOR, true, 0},
            {"button", "gpiochip0", "18", GPIO_BUTTON, true, 0},
        };
        const BluezDeviceConfig ble[] = {{.id = "strap", .measure = {0x2A37}, .passkey = -1},
                                         {.id = "climate", .advertises = true, .passkey = -1}};
        const uint8_t mac[6] = {0xA4, 0xC1, 0x38, 0, 0, 1};
        OutboxOptions oo = {.max_size = 1 << 20};
        SensorSink sink = {.event = on_event, .frame = on_frame};
        Config *c = config();
        sd_event *e = NULL;
        Outbox *ob = NULL;
        Devices *d = NULL;
        GpioInputs *g = NULL;
        Bluez *b = NULL;
        Device *dev;
        json_t *j;

        CHECK(sd_event_new(&e) >= 0);
        snprintf(path, sizeof path, "%s/outbox.db", dir);
        CHECK(outbox_open(e, path, &oo, &ob, &err) == 0);
        free(err);
        err = NULL;
        snprintf(path, sizeof path, "%s/sensors.db", dir);
        CHECK(devices_new(e, path, &d, &err) == 0);
        free(err);
        CHECK(devices_add(d, "strap", PROFILE_HEART_RATE, mac, NULL) == 0);
        dev = devices_find(d, "strap");
        CHECK(dev);
        if (!c || !ob || !d || !dev)
                return;
        dev->last_seen_usec = 1772442000LL * 1000000;
        dev->has_battery = true;
        dev->battery = 93;
        snprintf(dev->last_metric, sizeof dev->last_metric, "heart_rate");
        dev->last_value = 72.5;
        dev->frames = 4;
        CHECK(gpio_inputs_new(e, in, 2, &sink, &g) == 0);
        gpio_inputs_fake_start(g, 0, 1);
        /* Text that is not UTF-8 (a device's name cut inside a character, an error from below)
         * must not cost the status. */
        gpio_inputs_fail(g, 1, "gone \xc3");
        CHECK(bluez_new(e, NULL, ble, 2, &sink, &(BluezCallbacks){}, &b) == 0);
        CHECK(outbox_add(ob, LANE_EVENTS, "{\"x\":1}", 7) == 0);

        StatusSources src = {.config = c,
                             .outbox = ob,
                             .devices = d,
                             .bluez = b,
                             .gpio = g,
                             .now_usec = 1772442000LL * 1000000,
                             .uptime_usec = 61500000};
        j = status_build(&src, "online", NULL, true);
        CHECK(j);
        CHECK_STREQ(json_string_value(json_object_get(j, "time")), "2026-03-02T09:00:00.000Z");
        CHECK(json_integer_value(json_object_get(j, "backlog")) == 1);
        CHECK(json_integer_value(json_object_get(j, "uptime_s")) == 61);
        CHECK(is_type(j, "backlog_by_lane.alerts", JSON_INTEGER) &&
              is_type(j, "backlog_by_lane.events", JSON_INTEGER) &&
              is_type(j, "backlog_by_lane.telemetry", JSON_INTEGER));
        CHECK(is_type(j, "dropped", JSON_INTEGER) && is_type(j, "last_seq", JSON_INTEGER) &&
              is_type(j, "epoch", JSON_INTEGER));
        CHECK(!json_object_get(j, "refused") && !json_object_get(j, "too_large")); /* no uplink given */
        CHECK(is_type(j, "store.ok", JSON_TRUE) && is_type(j, "store.failed_commits", JSON_INTEGER) &&
              is_type(j, "store.in_memory", JSON_INTEGER) &&
              is_type(j, "store.alerts_in_memory", JSON_INTEGER));
        CHECK(!json_object_get(json_object_get(j, "store"), "replaced"));
        CHECK(is_type(j, "bluetooth.adapter", JSON_NULL) &&
              is_type(j, "bluetooth.discovering", JSON_FALSE) &&
              is_type(j, "bluetooth.unknown_devices", JSON_INTEGER));
        CHECK(is_type(j, "sensors.strap.last_seen", JSON_STRING) &&
              is_type(j, "sensors.strap.connected", JSON_FALSE) &&
              is_type(j, "sensors.strap.frames", JSON_INTEGER) &&
              is_type(j, "sensors.strap.rejected", JSON_INTEGER));
        CHECK(is_type(j, "sensors.climate.last_seen", JSON_NULL) &&
              !json_object_get(json_object_get(json_object_get(j, "sensors"), "climate"), "battery"));
        CHECK(is_type(j, "unprovisioned", JSON_ARRAY));
        CHECK(is_type(j, "inputs.front-door.state", JSON_INTEGER) &&
              is_type(j, "inputs.button.error", JSON_STRING));
        json_decref(j);

        s = status_format(&src, "online", NULL, true);
        CHECK(s);
        if (s) {
                /* Numbers as in the items: whole numbers plain, the rest as short as they read back. */
                CHECK(strstr(s, "\"battery\":93,\"last_value\":{\"metric\":\"heart_rate\",\"value\":72.5},"
                                "\"frames\":4,"));
                CHECK(strstr(s, "\"backlog_by_lane\":{\"alerts\":0,\"events\":0,\"telemetry\":0}"));
                CHECK(strstr(s, "\"button\":{\"error\":\"gone ?\"}"));
                CHECK(strstr(s, ",\"uptime_s\":61}"));
        }
        free(s);
        dev->battery = NAN;
        dev->last_value = 36.6;
        s = status_format(&src, "online", NULL, true);
        CHECK(s && strstr(s, "\"battery\":null,\"last_value\":{\"metric\":\"heart_rate\",\"value\":36.6}"));
        free(s);

        /* BLE that does not run: only why. */
        src.bluez = NULL;
        src.bluez_error = "no system bus: No such file or directory";
        j = status_build(&src, "online", NULL, true);
        json_t *want = json_pack("{s:s}", "error", "no system bus: No such file or directory");
        CHECK(json_equal(json_object_get(j, "bluetooth"), want));
        CHECK(!json_object_get(j, "sensors") && !json_object_get(j, "unprovisioned"));
        json_decref(want);
        json_decref(j);

        bluez_free(b);
        gpio_inputs_free(g);
        devices_free(d);
        outbox_free(ob);
        sd_event_unref(e);
        config_free(c);
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
        if (!mkdtemp(dir))
                abort();
}

static void cleanup(void) __attribute__((destructor));
static void cleanup(void)
{
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        (void)!system(cmd);
}

TEST_MAIN(TEST(test_lwt_is_byte_exact), TEST(test_full_status_has_every_field))
