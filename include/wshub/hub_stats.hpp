// wshub/hub_stats.hpp: counters a Hub keeps for metrics and health checks.
//
// Thread safety: HubCounters is written on the hub's strand with relaxed
// atomics, so `Hub::stats()` may read a snapshot from any thread (for a
// /metrics endpoint) without stopping the hub. The fields of one snapshot are
// not read at the same instant.
#pragma once

#include <atomic>
#include <cstdint>

#include "wshub/pubsub_concept.hpp"

namespace wshub {

// A snapshot; plain values.
struct HubStats {
    std::uint64_t connections = 0;     // open connections now
    std::uint64_t subscriptions = 0;   // (connection, channel) pairs now
    std::uint64_t channels = 0;        // channels tracked now: with local subscribers, or a PubSub call in flight
    std::uint64_t messages_in = 0;     // client frames received, total
    std::uint64_t messages_out = 0;    // messages handed to the transport (each of a batch's counts), total
    std::uint64_t bytes_out = 0;       // payload bytes handed to the transport, total
    std::uint64_t publishes = 0;       // client publishes accepted, total
    std::uint64_t evictions = 0;       // connections closed with 4008, total
    std::uint64_t dropped_messages = 0;  // message frames dropped by the slow-client policy, total
    std::uint64_t gaps_sent = 0;       // gap frames sent, total
    std::uint64_t bad_frames = 0;      // frames answered with bad_request/invalid_channel/rate_limited, total
    std::uint64_t pubsub_subscribes = 0;    // PubSub subscribe calls made, total
    std::uint64_t pubsub_unsubscribes = 0;  // PubSub unsubscribe calls made, total
    std::uint64_t directs_routed = 0;  // direct messages handed to the registry for another instance, total
    std::uint64_t directs_received = 0;  // direct messages that arrived in this instance's inbox, total
    std::uint64_t batches = 0;         // fan-outs of several messages at once (one tick's worth for a channel), total
    bool pubsub_up = true;             // the PubSub's last reported state
    bool draining = false;             // graceful shutdown has started
};

namespace detail {

// The live counters behind HubStats.
struct HubCounters {
    using counter = std::atomic<std::uint64_t>;
    counter connections{0}, subscriptions{0}, channels{0}, messages_in{0}, messages_out{0}, bytes_out{0},
        publishes{0}, evictions{0}, dropped_messages{0}, gaps_sent{0}, bad_frames{0}, pubsub_subscribes{0},
        pubsub_unsubscribes{0}, directs_routed{0}, directs_received{0}, batches{0};
    std::atomic<bool> pubsub_up{true}, draining{false};

    static void add(counter& c, std::uint64_t n = 1) noexcept { c.fetch_add(n, std::memory_order_relaxed); }
    static void sub(counter& c, std::uint64_t n = 1) noexcept { c.fetch_sub(n, std::memory_order_relaxed); }

    HubStats snapshot() const noexcept {
        const auto r = [](const counter& c) { return c.load(std::memory_order_relaxed); };
        HubStats s;
        s.connections = r(connections);
        s.subscriptions = r(subscriptions);
        s.channels = r(channels);
        s.messages_in = r(messages_in);
        s.messages_out = r(messages_out);
        s.bytes_out = r(bytes_out);
        s.publishes = r(publishes);
        s.evictions = r(evictions);
        s.dropped_messages = r(dropped_messages);
        s.gaps_sent = r(gaps_sent);
        s.bad_frames = r(bad_frames);
        s.pubsub_subscribes = r(pubsub_subscribes);
        s.pubsub_unsubscribes = r(pubsub_unsubscribes);
        s.directs_routed = r(directs_routed);
        s.directs_received = r(directs_received);
        s.batches = r(batches);
        s.pubsub_up = pubsub_up.load(std::memory_order_relaxed);
        s.draining = draining.load(std::memory_order_relaxed);
        return s;
    }
};

}  // namespace detail
}  // namespace wshub
