/* GPIO inputs: debounce and the meaning of edges, fed through the seam with exact kernel time stamps;
 * start-up state; a missing chip fails that input only. */
#include <string.h>

#include "sensors/gpio.h"
#include "test.h"

#define MS 1000LL

static char got[2048];

static void on_event(void *userdata, const Event *e)
{
        size_t n = strlen(got);
        snprintf(got + n, sizeof got - n, "%s%s:%s=%d", n ? " " : "", e->sensor, event_kind_name(e->kind), e->value);
}

static void on_reading(void *userdata, const Reading *r)
{
}

static void test_debounce_reed_switch_burst_is_one_change(void)
{
        Debounce d;
        int v;
        int64_t ts;
        debounce_init(&d, 50 * MS, 0);
        /* The door opens at t=1000 ms; the reed switch bounces for 5 ms. */
        debounce_edge(&d, 1, 1000 * MS);
        debounce_edge(&d, 0, 1002 * MS);
        debounce_edge(&d, 1, 1003 * MS);
        debounce_edge(&d, 0, 1004 * MS);
        debounce_edge(&d, 1, 1005 * MS);
        CHECK(debounce_deadline(&d) == 1055 * MS);
        CHECK(!debounce_settle(&d, 1054 * MS, &v, &ts));
        CHECK(debounce_settle(&d, 1055 * MS, &v, &ts));
        CHECK(v == 1 && ts == 1000 * MS); /* reported at the first edge: when the door really opened */
        CHECK(!debounce_settle(&d, 2000 * MS, &v, &ts));
        CHECK(debounce_deadline(&d) == INT64_MAX);
}

static void test_debounce_glitch_back_to_stable_is_nothing(void)
{
        Debounce d;
        int v;
        int64_t ts;
        debounce_init(&d, 50 * MS, 0);
        debounce_edge(&d, 1, 1000 * MS);
        debounce_edge(&d, 0, 1010 * MS); /* back within the window: a glitch */
        CHECK(debounce_deadline(&d) == INT64_MAX);
        CHECK(!debounce_settle(&d, 2000 * MS, &v, &ts));
        /* A repeated edge of the stable value (an event lost in between) is not a change either. */
        debounce_edge(&d, 0, 3000 * MS);
        CHECK(!debounce_settle(&d, 4000 * MS, &v, &ts));
}

static void test_edge_meaning_by_kind(void)
{
        Event e;
        CHECK(gpio_edge_event(GPIO_DOOR, 1, &e) && e.kind == EVENT_DOOR && e.value == 1);
        CHECK(gpio_edge_event(GPIO_DOOR, 0, &e) && e.kind == EVENT_DOOR && e.value == 0);
        CHECK(gpio_edge_event(GPIO_BED, 1, &e) && e.kind == EVENT_BED && e.value == 1);
        CHECK(gpio_edge_event(GPIO_BUTTON, 1, &e) && e.kind == EVENT_BUTTON && e.value == 1);
        CHECK(!gpio_edge_event(GPIO_BUTTON, 0, &e)); /* a release is nothing */
        CHECK(gpio_edge_event(GPIO_DISPENSER_DOSE_TAKEN, 1, &e) && e.kind == EVENT_DOSE_TAKEN);
        CHECK(!gpio_edge_event(GPIO_DISPENSER_DOSE_TAKEN, 0, &e));
        CHECK(gpio_edge_event(GPIO_DISPENSER_DOSE_DUE, 1, &e) && e.kind == EVENT_DOSE_DUE);
        CHECK(gpio_edge_event(GPIO_DISPENSER_FAULT, 1, &e) && e.kind == EVENT_DISPENSER_FAULT && e.value == 1);
        CHECK(gpio_edge_event(GPIO_DISPENSER_FAULT, 0, &e) && e.value == 0);
        CHECK(gpio_edge_event(GPIO_MOTION, 1, &e) && e.kind == EVENT_MOTION);
        CHECK(gpio_edge_event(GPIO_GENERIC, 0, &e) && e.kind == EVENT_GENERIC && e.value == 0);
        CHECK(gpio_kind_has_state(GPIO_DOOR) && gpio_kind_has_state(GPIO_BED) && !gpio_kind_has_state(GPIO_BUTTON));
        GpioKind k;
        CHECK(gpio_kind_from_name("dispenser-dose-taken", &k) == 0 && k == GPIO_DISPENSER_DOSE_TAKEN);
        CHECK(gpio_kind_from_name("doorbell", &k) < 0);
}

static void test_inputs_through_the_seam(void)
{
        sd_event *e = NULL;
        GpioInputs *g = NULL;
        const GpioInputConfig cfg[] = {
                {"front-door", "gpiochip0", "17", GPIO_DOOR, true, 50},
                {"alarm-button", "gpiochip0", "button", GPIO_BUTTON, true, 20},
                {"dispenser", "gpiochip0", "18", GPIO_DISPENSER_DOSE_TAKEN, false, 0},
        };
        SensorSink sink = {.reading = on_reading, .event = on_event};

        got[0] = '\0';
        sd_event_new(&e);
        CHECK(gpio_inputs_new(e, cfg, 3, &sink, &g) == 0);
        /* Start-up: the door was left open while the gateway restarted: reported once. The button's
         * state is not an event. */
        gpio_inputs_fake_start(g, 0, 1);
        gpio_inputs_fake_start(g, 1, 0);
        gpio_inputs_fake_start(g, 2, 0);
        CHECK_STREQ(got, "front-door:door=1");
        got[0] = '\0';
        /* The door closes with a bounce burst: one event once it has held for 50 ms. */
        gpio_inputs_edge(g, 0, 0, 5000 * MS);
        gpio_inputs_edge(g, 0, 1, 5001 * MS);
        gpio_inputs_edge(g, 0, 0, 5003 * MS);
        gpio_inputs_settle(g, 0, 5040 * MS);
        CHECK_STREQ(got, "");
        gpio_inputs_settle(g, 0, 5053 * MS);
        CHECK_STREQ(got, "front-door:door=0");
        CHECK(gpio_input_state(g, 0) == 0);
        /* A button press (held 200 ms): one event; the release is nothing. */
        gpio_inputs_edge(g, 1, 1, 6000 * MS);
        gpio_inputs_settle(g, 1, 6020 * MS);
        gpio_inputs_edge(g, 1, 0, 6200 * MS);
        gpio_inputs_settle(g, 1, 6220 * MS);
        CHECK_STREQ(got, "front-door:door=0 alarm-button:button=1");
        /* No debounce: a dispenser pulse read in one batch (both edges) still counts. */
        gpio_inputs_edge(g, 2, 1, 7000 * MS);
        gpio_inputs_edge(g, 2, 0, 7000 * MS + 300);
        CHECK_STREQ(got, "front-door:door=0 alarm-button:button=1 dispenser:dose_taken=1");
        gpio_inputs_free(g);
        sd_event_unref(e);
}

static void test_missing_chip_fails_that_input_only(void)
{
        sd_event *e = NULL;
        GpioInputs *g = NULL;
        const GpioInputConfig cfg[] = {
                {"front-door", "gpiochip-that-is-not-there", "17", GPIO_DOOR, true, 50},
        };
        SensorSink sink = {.reading = on_reading, .event = on_event};
        sd_event_new(&e);
        CHECK(gpio_inputs_new(e, cfg, 1, &sink, &g) == 0);
        CHECK(gpio_inputs_start(g) == 1);
        CHECK(gpio_input_error(g, 0) && strstr(gpio_input_error(g, 0), "no GPIO chip 'gpiochip-that-is-not-there'"));
        CHECK(gpio_input_state(g, 0) == -1);
        gpio_inputs_free(g);
        sd_event_unref(e);
}

TEST_MAIN(TEST(test_debounce_reed_switch_burst_is_one_change), TEST(test_debounce_glitch_back_to_stable_is_nothing),
          TEST(test_edge_meaning_by_kind), TEST(test_inputs_through_the_seam), TEST(test_missing_chip_fails_that_input_only))
