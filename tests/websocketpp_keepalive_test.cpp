// WebsocketppTransport end to end: the paths that protect an instance from
// its clients: a client that stops reading is evicted while 100 others
// receive everything, a client that never answers pings is closed, and the
// io_context run by several threads delivers everything (the TSan build
// checks the transport's locking).
#include <catch2/catch.hpp>

#include "support/json_reader.hpp"
#include "support/raw_ws_client.hpp"
#include "support/ws_clients.hpp"
#include "support/ws_server.hpp"

using namespace wshub;
using namespace wshub::test;

namespace {
HubConfig hub_config() {
    HubConfig config;
    config.instance_id = "keep";
    config.publish_rate_per_second = 0;
    config.max_queue_bytes = 128 * 1024;
    return config;
}
}  // namespace

TEST_CASE("a client that stops reading is evicted; 100 others receive everything", "[transport][e2e][slow]") {
    WebsocketppTransportConfig tc = ephemeral_port();
    tc.socket_send_buffer_bytes = 16 * 1024;
    WsServer<> server(hub_config(), tc);
    server.start();

    RawWsClient slow(server.port(), 4096);
    REQUIRE(slow.upgraded());
    slow.send_text(R"({"type":"subscribe","channel":"feed"})");

    TestClients clients;
    std::vector<std::shared_ptr<ClientConn>> readers;
    for (int i = 0; i < 100; ++i) {
        readers.push_back(clients.open(server.port()));
        REQUIRE(readers.back()->wait_connected() == ClientConn::State::open);
        readers.back()->send(R"({"type":"subscribe","channel":"feed","id":1})");
    }
    for (auto& r : readers) REQUIRE(r->next_of_type("ack"));
    REQUIRE(eventually([&] { return server.on_strand([&] { return server.hub.subscriber_count("feed"); }) == 101; }));

    auto publisher = clients.open(server.port());
    REQUIRE(publisher->wait_connected() == ClientConn::State::open);
    // Published in batches that the readers take before the next one: the
    // readers keep up (one client thread reads all 100), the stalled one cannot.
    constexpr int batches = 20;
    constexpr int batch = 50;
    const std::string filler(1000, 'x');
    std::vector<int> received(readers.size(), 0);
    for (int b = 0; b < batches; ++b) {
        for (int i = b * batch; i < (b + 1) * batch; ++i) {
            publisher->send(R"({"type":"publish","channel":"feed","data":{"i":)" + std::to_string(i) + R"(,"f":")" +
                            filler + R"("}})");
        }
        for (std::size_t r = 0; r < readers.size(); ++r) {
            while (received[r] < (b + 1) * batch) {
                const auto frame = readers[r]->next_of_type("message");
                REQUIRE(frame);
                REQUIRE(parse_frame(*frame)["data"]["i"].GetInt() == received[r]);  // all of them, in order
                ++received[r];
            }
        }
    }
    CHECK(server.hub.stats().evictions == 1);
    CHECK(eventually([&] { return server.hub.stats().connections == 102 - 1; }));
}

TEST_CASE("a client that never answers pings is closed; one that answers stays", "[transport][e2e][ping]") {
    WebsocketppTransportConfig tc = ephemeral_port();
    tc.ping_interval = std::chrono::milliseconds(200);
    tc.pong_timeout = std::chrono::milliseconds(300);
    tc.close_timeout = std::chrono::milliseconds(300);
    WsServer<> server(hub_config(), tc);
    server.start();
    TestClients clients;
    auto healthy = clients.open(server.port());
    REQUIRE(healthy->wait_connected() == ClientConn::State::open);
    RawWsClient deaf(server.port(), 4096);
    REQUIRE(deaf.upgraded());
    REQUIRE(eventually([&] { return server.hub.stats().connections == 2; }));
    CHECK(eventually([&] { return server.hub.stats().connections == 1; }));  // the deaf one is gone
    CHECK(healthy->state() == ClientConn::State::open);
}

TEST_CASE("a client that floods pings and reads no pongs is closed, not buffered", "[transport][e2e][ping]") {
    WebsocketppTransportConfig tc = ephemeral_port();
    tc.socket_send_buffer_bytes = 16 * 1024;
    tc.max_unread_control_bytes = 64 * 1024;
    WsServer<> server(hub_config(), tc);
    server.start();
    RawWsClient flooder(server.port(), 4096);
    REQUIRE(flooder.upgraded());
    REQUIRE(eventually([&] { return server.hub.stats().connections == 1; }));
    const std::string payload(125, 'p');
    try {
        for (int i = 0; i < 5000 && server.hub.stats().connections == 1; ++i) flooder.send_ping(payload);
    } catch (const std::exception&) {
        // The server closed the socket under the writes: that is the point.
    }
    CHECK(eventually([&] { return server.hub.stats().connections == 0; }));
}

TEST_CASE("an io_context on four threads delivers every message exactly once", "[transport][e2e][threads]") {
    WsServer<> server(hub_config());
    server.start(4);
    TestClients clients;
    std::vector<std::shared_ptr<ClientConn>> subs;
    for (int i = 0; i < 20; ++i) {
        subs.push_back(clients.open(server.port()));
        REQUIRE(subs.back()->wait_connected() == ClientConn::State::open);
        subs.back()->send(R"({"type":"subscribe","channel":"mt","id":1})");
    }
    for (auto& s : subs) REQUIRE(s->next_of_type("ack"));
    for (int p = 0; p < 5; ++p) {
        for (int i = 0; i < 100; ++i) {
            subs[p]->send(R"({"type":"publish","channel":"mt","data":)" + std::to_string(p * 1000 + i) + "}");
        }
    }
    for (auto& s : subs) {
        std::vector<int> last(5, -1);
        for (int n = 0; n < 500; ++n) {
            const auto frame = s->next_of_type("message");
            REQUIRE(frame);
            const int value = parse_frame(*frame)["data"].GetInt();
            const int publisher = value / 1000;
            CHECK(value % 1000 == last[publisher] + 1);  // per-publisher order holds
            last[publisher] = value % 1000;
        }
        CHECK_FALSE(s->next_of_type("message", std::chrono::milliseconds(10)));
    }
}
