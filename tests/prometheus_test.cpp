// format_prometheus: HubStats as Prometheus text.
#include <catch2/catch.hpp>

#include "wshub/prometheus.hpp"

TEST_CASE("every counter appears with its type and the instance label", "[prometheus]") {
    wshub::HubStats s;
    s.connections = 3;
    s.evictions = 2;
    s.pubsub_up = false;
    s.draining = true;
    const auto text = wshub::format_prometheus(s, "node-1");
    CHECK(text.find("# TYPE wshub_connections gauge\nwshub_connections{instance=\"node-1\"} 3\n") != std::string::npos);
    CHECK(text.find("# TYPE wshub_evictions_total counter\nwshub_evictions_total{instance=\"node-1\"} 2\n") !=
          std::string::npos);
    CHECK(text.find("wshub_pubsub_up{instance=\"node-1\"} 0\n") != std::string::npos);
    CHECK(text.find("wshub_draining{instance=\"node-1\"} 1\n") != std::string::npos);
    for (const char* name : {"wshub_subscriptions", "wshub_channels", "wshub_messages_in_total",
                             "wshub_messages_out_total", "wshub_bytes_out_total", "wshub_bad_frames_total"}) {
        INFO(name);
        CHECK(text.find(std::string("# HELP ") + name + " ") != std::string::npos);
    }
}
