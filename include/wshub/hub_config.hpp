// wshub/hub_config.hpp: the runtime knobs of a Hub: limits, timeouts, names.
//
// Every field has a default that suits production; docs/configuration.md
// explains each one. Units are in the name or the type.
//
// Thread safety: a plain value. The Hub copies it at construction.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace wshub {

struct HubConfig {
    // This instance's id, shown to clients in `welcome` and used in connection
    // ids and Redis keys. Empty: a random 12-hex-digit id is generated.
    // Allowed: 1..64 bytes of A-Z a-z 0-9 _ . - ; anything else makes the Hub
    // constructor throw std::invalid_argument. Default: empty.
    std::string instance_id;

    // Prefix of every Redis key and Pub/Sub channel the hub names
    // (`<prefix>ch:<channel>`, ...). Default: "wshub:".
    std::string prefix = "wshub:";

    // Largest client frame accepted, in bytes; larger closes with 1009.
    // Transports enforce it before buffering; the hub checks again. Default: 64 KiB.
    std::size_t max_message_bytes = 64 * 1024;

    // Deepest nesting of arrays/objects in a client frame, the frame's own
    // object counting as 1; deeper gets `bad_request`. Default: 32.
    std::size_t max_nesting_depth = 32;

    // Channels one connection may be subscribed to at once; one more gets
    // `too_many_subscriptions`. Default: 64.
    std::size_t max_subscriptions_per_connection = 64;

    // Bad frames in a row (undecodable, invalid channel, rate limited) after
    // which the connection is closed with 1008. A good frame resets the count. Default: 8.
    std::size_t max_bad_frames_in_row = 8;

    // Outgoing bytes a connection may have queued (sent by the hub, not yet
    // taken by the peer) before the slow-client policy applies. Default: 1 MiB.
    std::size_t max_queue_bytes = 1024 * 1024;

    // Outgoing frames a connection may have queued before the slow-client
    // policy applies. Default: 4096 frames.
    std::size_t max_queue_messages = 4096;

    // How often connections that had messages dropped (DropAndGap policy) are
    // checked for having drained, so they get their `gap`. Default: 100 ms.
    std::chrono::milliseconds drain_check_interval{100};

    // Publishes (and sends) per second a connection may make on average;
    // more get `rate_limited`. 0 disables the limit. Default: 100 per second.
    double publish_rate_per_second = 100.0;

    // Publishes a connection may make in a burst above the average rate. Default: 200.
    double publish_burst = 200.0;

    // Graceful shutdown: how long to wait for clients to finish the close
    // handshake before the rest are terminated. Default: 10 s.
    std::chrono::milliseconds shutdown_timeout{10'000};

    // Graceful shutdown closes connections in batches of this many, so that
    // clients do not all reconnect in the same instant. Default: 500 connections.
    std::size_t shutdown_batch_size = 500;

    // Pause between two shutdown batches. Default: 50 ms.
    std::chrono::milliseconds shutdown_batch_interval{50};

    // Channels with presence (join/leave events to their subscribers, and the
    // `presence` request): those whose name starts with one of these prefixes;
    // "" enables every channel. Presence costs a publish per join and leave
    // and, with a ConnectionRegistry, Redis writes per member. Default: none.
    std::vector<std::string> presence_prefixes;

    // When set, decides instead of presence_prefixes. Called on the hub's
    // strand; must be cheap and must not throw. Default: empty.
    std::function<bool(std::string_view channel)> presence_filter;

    bool presence_enabled(std::string_view channel) const {
        if (presence_filter) return presence_filter(channel);
        for (const auto& prefix : presence_prefixes) {
            if (channel.compare(0, prefix.size(), prefix) == 0) return true;
        }
        return false;
    }
};

}  // namespace wshub
