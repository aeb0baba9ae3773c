/* The pairing agent (org.bluez.Agent1 at AGENT_PATH): NoInputNoOutput, so bonding is "just works",
 * or KeyboardOnly when some device has a passkey configured, which the gateway then "types". It
 * answers only for the devices this home has. */
#include <stdio.h>
#include <string.h>

#include "sensors/bluez-internal.h"

#define AGENT_PATH "/org/homecare/agent"

static int agent_reject(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        return sd_bus_error_set(ret_error, "org.bluez.Error.Rejected", "no input or output on this gateway");
}

/* The passkey configured for the device bluetoothd asks about, or -1. */
static int passkey_for(Bluez *b, sd_bus_message *m)
{
        const char *path;
        BluezDevice *d;
        if (sd_bus_message_read(m, "o", &path) < 0 || !(d = bluez_find_device(b, path)) ||
            d->provisioned < 0)
                return -1;
        return b->cfg[d->provisioned].passkey;
}

static int agent_passkey(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        int k = passkey_for(userdata, m);
        if (k < 0)
                return agent_reject(m, userdata, ret_error);
        bluez_log(userdata, LOG_NOTICE, "Answering a passkey request with the configured passkey");
        return sd_bus_reply_method_return(m, "u", (uint32_t)k);
}

static int agent_pin(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        char pin[16];
        int k = passkey_for(userdata, m);
        if (k < 0)
                return agent_reject(m, userdata, ret_error);
        snprintf(pin, sizeof pin, "%06d", k);
        return sd_bus_reply_method_return(m, "s", pin);
}

static int agent_accept(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        return sd_bus_reply_method_return(m, "");
}

/* "Just works" confirmation and service authorization: only for the devices this home has; a
 * neighbour's phone does not get to pair with the gateway. */
static int agent_authorize(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const char *path = NULL;
        BluezDevice *d;
        if (sd_bus_message_read(m, "o", &path) < 0 || !(d = bluez_find_device(b, path)) ||
            d->provisioned < 0) {
                bluez_log(b, LOG_WARNING, "Refused pairing with %s: not a configured sensor",
                          path ? path : "?");
                return agent_reject(m, userdata, ret_error);
        }
        return sd_bus_reply_method_return(m, "");
}

static const sd_bus_vtable agent_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("Release", "", "", agent_accept, 0),
    SD_BUS_METHOD("RequestPinCode", "o", "s", agent_pin, 0),
    SD_BUS_METHOD("DisplayPinCode", "os", "", agent_accept, 0),
    SD_BUS_METHOD("RequestPasskey", "o", "u", agent_passkey, 0),
    SD_BUS_METHOD("DisplayPasskey", "ouq", "", agent_accept, 0),
    SD_BUS_METHOD("RequestConfirmation", "ou", "", agent_authorize, 0),
    SD_BUS_METHOD("RequestAuthorization", "o", "", agent_authorize, 0),
    SD_BUS_METHOD("AuthorizeService", "os", "", agent_authorize, 0),
    SD_BUS_METHOD("Cancel", "", "", agent_accept, 0),
    SD_BUS_VTABLE_END,
};

/* The answer to RegisterAgent carries the Bluez in a floating slot: the bus, and with it the slot,
 * goes in bluez_free() before the Bluez does. */
static int on_agent_registered(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bluez *b = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        if (e && !sd_bus_error_has_name(e, "org.bluez.Error.AlreadyExists")) {
                bluez_log(b, LOG_WARNING, "Could not register the pairing agent: %s", e->name);
                return 0;
        }
        (void)sd_bus_call_method_async(b->bus, NULL, BLUEZ, "/org/bluez", "org.bluez.AgentManager1",
                                       "RequestDefaultAgent", NULL, NULL, "o", AGENT_PATH);
        return 0;
}

void bluez_agent_register(Bluez *b)
{
        bool keyboard = false;
        if (!b->agent &&
            sd_bus_add_object_vtable(b->bus, &b->agent, AGENT_PATH, "org.bluez.Agent1", agent_vtable, b) < 0)
                bluez_log(b, LOG_WARNING, "Could not create the pairing agent");
        for (size_t i = 0; i < b->n_cfg; i++)
                keyboard |= b->cfg[i].passkey >= 0;
        /* With a passkey configured for some device, the gateway can "type" it. */
        (void)sd_bus_call_method_async(b->bus, NULL, BLUEZ, "/org/bluez", "org.bluez.AgentManager1",
                                       "RegisterAgent", on_agent_registered, b, "os", AGENT_PATH,
                                       keyboard ? "KeyboardOnly" : "NoInputNoOutput");
}

void bluez_agent_unregister(Bluez *b)
{
        if (b->bus && b->present && b->agent)
                (void)sd_bus_call_method_async(b->bus, NULL, BLUEZ, "/org/bluez", "org.bluez.AgentManager1",
                                               "UnregisterAgent", NULL, NULL, "o", AGENT_PATH);
}
