// wshub/prometheus.hpp: HubStats in the Prometheus text exposition format.
//
// For a /metrics endpoint. Every metric carries an `instance` label so that
// several instances can be scraped into one series set.
//
// Thread safety: a pure function of its arguments.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "wshub/hub_stats.hpp"

namespace wshub {

inline std::string format_prometheus(const HubStats& s, std::string_view instance) {
    std::string out;
    out.reserve(2048);
    const std::string label = "{instance=\"" + std::string(instance) + "\"}";
    const auto metric = [&](const char* name, const char* type, const char* help, std::uint64_t value) {
        out.append("# HELP ").append(name).append(" ").append(help).append("\n");
        out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
        out.append(name).append(label).append(" ").append(std::to_string(value)).append("\n");
    };
    metric("wshub_connections", "gauge", "Open WebSocket connections.", s.connections);
    metric("wshub_subscriptions", "gauge", "Subscriptions (connection, channel pairs).", s.subscriptions);
    metric("wshub_channels", "gauge", "Channels tracked by this instance (with subscribers, or a PubSub call in flight).", s.channels);
    metric("wshub_messages_in_total", "counter", "Client frames received.", s.messages_in);
    metric("wshub_messages_out_total", "counter", "Frames sent to clients.", s.messages_out);
    metric("wshub_bytes_out_total", "counter", "Payload bytes sent to clients.", s.bytes_out);
    metric("wshub_publishes_total", "counter", "Client publishes accepted.", s.publishes);
    metric("wshub_evictions_total", "counter", "Slow clients closed with 4008.", s.evictions);
    metric("wshub_dropped_messages_total", "counter", "Messages dropped for slow clients.", s.dropped_messages);
    metric("wshub_gaps_sent_total", "counter", "gap frames sent.", s.gaps_sent);
    metric("wshub_bad_frames_total", "counter", "Frames refused as malformed, invalid or rate limited.", s.bad_frames);
    metric("wshub_pubsub_subscribes_total", "counter", "Subscribe calls made to the PubSub.", s.pubsub_subscribes);
    metric("wshub_pubsub_unsubscribes_total", "counter", "Unsubscribe calls made to the PubSub.",
           s.pubsub_unsubscribes);
    metric("wshub_directs_routed_total", "counter", "Direct messages sent on to another instance.", s.directs_routed);
    metric("wshub_directs_received_total", "counter", "Direct messages received from another instance.",
           s.directs_received);
    metric("wshub_batches_total", "counter", "Fan-outs of several messages in one send (per-tick coalescing).",
           s.batches);
    metric("wshub_pubsub_up", "gauge", "1 while the PubSub backend is reachable.", s.pubsub_up ? 1 : 0);
    metric("wshub_draining", "gauge", "1 once graceful shutdown has started.", s.draining ? 1 : 0);
    return out;
}

}  // namespace wshub
