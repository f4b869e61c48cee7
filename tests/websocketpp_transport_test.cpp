// WebsocketppTransport end to end: a Hub on real sockets, real WebSocket
// clients (websocketpp's client, and a raw socket that misbehaves).
#include <catch2/catch.hpp>

#include "support/json_reader.hpp"
#include "support/raw_ws_client.hpp"
#include "support/ws_clients.hpp"
#include "support/ws_server.hpp"

using namespace wshub;
using namespace wshub::test;

namespace {
HubConfig quiet_hub() {
    HubConfig config;
    config.instance_id = "e2e";
    config.publish_rate_per_second = 0;
    return config;
}
}  // namespace

TEST_CASE("welcome, subscribe, publish to subscribers only, unsubscribe", "[transport][e2e]") {
    WsServer<> server(quiet_hub());
    server.start();
    TestClients clients;
    std::vector<std::shared_ptr<ClientConn>> subs;
    for (int i = 0; i < 5; ++i) {
        subs.push_back(clients.open(server.port()));
        REQUIRE(subs.back()->wait_connected() == ClientConn::State::open);
        const auto welcome = subs.back()->next();
        REQUIRE(welcome);
        CHECK(frame_type(*welcome) == "welcome");
        CHECK(string_field(*welcome, "instance") == "e2e");
        subs.back()->send(R"({"type":"subscribe","channel":"room","id":1})");
        REQUIRE(subs.back()->next_of_type("ack"));
    }
    auto outsider = clients.open(server.port());
    REQUIRE(outsider->wait_connected() == ClientConn::State::open);
    REQUIRE(outsider->next_of_type("welcome"));

    const auto prepared_before = server.transport.prepared_messages();
    subs[0]->send(R"({"type":"publish","channel":"room","data":{"n":1}})");
    for (auto& s : subs) {
        const auto message = s->next_of_type("message");
        REQUIRE(message);
        CHECK(*message == R"({"type":"message","channel":"room","data":{"n":1}})");
    }
    // One preparation for five recipients.
    CHECK(server.transport.prepared_messages() == prepared_before + 1);

    subs[1]->send(R"({"type":"unsubscribe","channel":"room","id":"u"})");
    REQUIRE(subs[1]->next_of_type("ack"));
    subs[0]->send(R"({"type":"publish","channel":"room","data":2,"id":"p"})");
    REQUIRE(subs[0]->next_of_type("ack"));
    REQUIRE(subs[2]->next_of_type("message"));
    CHECK_FALSE(subs[1]->next_of_type("message", std::chrono::milliseconds(300)));
    CHECK_FALSE(outsider->next_of_type("message", std::chrono::milliseconds(10)));
}
