// WebsocketppTransport end to end: graceful shutdown of 200 real clients.
#include <catch2/catch.hpp>

#include "support/ws_clients.hpp"
#include "support/ws_server.hpp"

using namespace wshub;
using namespace wshub::test;

TEST_CASE("graceful shutdown closes 200 clients with 1001 and returns", "[transport][e2e][shutdown]") {
    HubConfig config;
    config.instance_id = "bye";
    config.shutdown_batch_size = 50;
    config.shutdown_batch_interval = std::chrono::milliseconds(20);
    WsServer<> server(config);
    server.start(2);
    TestClients clients;
    std::vector<std::shared_ptr<ClientConn>> all;
    for (int i = 0; i < 200; ++i) {
        all.push_back(clients.open(server.port()));
        REQUIRE(all.back()->wait_connected() == ClientConn::State::open);
        all.back()->send(R"({"type":"subscribe","channel":"c)" + std::to_string(i % 10) + R"(","id":1})");
    }
    for (auto& c : all) REQUIRE(c->next_of_type("ack"));
    REQUIRE(server.shutdown());
    for (auto& c : all) CHECK(c->wait_closed() == 1001);
    CHECK(server.hub.stats().connections == 0);
    CHECK(server.pubsub.subscribed_topics() == 0);
    CHECK(server.transport.connection_count() == 0);

    // No new connections once it has stopped accepting.
    auto late = clients.open(server.port());
    CHECK(late->wait_connected() == ClientConn::State::failed);
}
