// Hub: graceful shutdown. Stop accepting, close with 1001 in batches, wait up
// to the deadline, terminate the rest, unsubscribe everything, then complete;
// twice is safe.
#include <catch2/catch.hpp>

#include <algorithm>

#include "support/fake_pubsub.hpp"
#include "support/hub_fixture.hpp"
#include "wshub/local_pubsub.hpp"

using namespace wshub;
using namespace wshub::test;
using namespace std::chrono_literals;

namespace {

HubConfig shutdown_config(std::chrono::milliseconds timeout, std::size_t batch, std::chrono::milliseconds interval) {
    HubConfig config;
    config.instance_id = "down";
    config.shutdown_timeout = timeout;
    config.shutdown_batch_size = batch;
    config.shutdown_batch_interval = interval;
    return config;
}

struct Graceful : HubFixture<LocalPubSub> {
    Graceful() : HubFixture<LocalPubSub>(shutdown_config(30s, 50, 1ms)) {}
};
struct SlowBatches : HubFixture<LocalPubSub> {
    // Batches so far apart that only the deadline can end the shutdown.
    SlowBatches() : HubFixture<LocalPubSub>(shutdown_config(300ms, 50, 1h)) {}
};
struct ShortDeadline : HubFixture<LocalPubSub> {
    ShortDeadline() : HubFixture<LocalPubSub>(shutdown_config(200ms, 500, 1ms)) {}
};
struct FakeBackend : HubFixture<FakePubSub> {
    FakeBackend() : HubFixture<FakePubSub>(shutdown_config(200ms, 500, 1ms)) {}
};

}  // namespace

TEST_CASE_METHOD(Graceful, "shutdown closes 200 clients with 1001 and completes", "[hub][shutdown]") {
    std::vector<ConnectionId> clients;
    for (int i = 0; i < 200; ++i) {
        clients.push_back(connect());
        request(clients.back(), R"({"type":"subscribe","channel":"c)" + std::to_string(i % 7) + R"("})");
    }
    REQUIRE(pubsub.subscribed_topics() == 7);
    bool done = false;
    hub.shutdown([&] { done = true; });
    REQUIRE(run_until(io, [&] { return done; }));

    CHECK(hub.draining());
    CHECK(hub.stats().draining);
    CHECK_FALSE(transport.accepting());
    for (const auto id : clients) {
        CHECK(transport.peer(id).close_code == close_code::going_away);
        CHECK_FALSE(transport.peer(id).terminated);
    }
    CHECK(hub.connection_count() == 0);
    CHECK(hub.channel_count() == 0);
    CHECK(pubsub.subscribed_topics() == 0);  // everything unsubscribed before completion
}

TEST_CASE_METHOD(SlowBatches, "connections are closed in batches; the deadline terminates the rest",
                 "[hub][shutdown]") {
    std::vector<ConnectionId> clients;
    for (int i = 0; i < 120; ++i) clients.push_back(connect());
    bool done = false;
    hub.shutdown([&] { done = true; });
    settle(io);
    CHECK(transport.close_calls() == 50);  // one batch, the next one an hour away
    REQUIRE(run_until(io, [&] { return done; }));
    std::size_t closed = 0;
    std::size_t terminated = 0;
    for (const auto id : clients) {
        closed += transport.peer(id).close_code.has_value() ? 1 : 0;
        terminated += transport.peer(id).terminated ? 1 : 0;
    }
    CHECK(closed == 50);
    CHECK(terminated == 70);
    CHECK(hub.connection_count() == 0);
}

TEST_CASE_METHOD(ShortDeadline, "clients that never answer the close are terminated at the deadline",
                 "[hub][shutdown]") {
    const auto polite = connect();
    const auto deaf = connect();
    request(deaf, R"({"type":"subscribe","channel":"room"})");
    transport.ignore_close(deaf);
    bool done = false;
    hub.shutdown([&] { done = true; });
    REQUIRE(run_until(io, [&] { return done; }));
    CHECK(transport.peer(polite).close_code == close_code::going_away);
    CHECK_FALSE(transport.peer(polite).terminated);
    CHECK(transport.peer(deaf).close_code == close_code::going_away);
    CHECK(transport.peer(deaf).terminated);
    CHECK(pubsub.subscribed_topics() == 0);
}

TEST_CASE_METHOD(Graceful, "shutdown twice: every completion runs once; after the end it runs at once",
                 "[hub][shutdown]") {
    for (int i = 0; i < 10; ++i) connect();
    int first = 0;
    int second = 0;
    hub.shutdown([&] { ++first; });
    hub.shutdown([&] { ++second; });
    REQUIRE(run_until(io, [&] { return first == 1 && second == 1; }));
    int third = 0;
    hub.shutdown([&] { ++third; });
    REQUIRE(run_until(io, [&] { return third == 1; }));
    settle(io);
    CHECK(first == 1);
    CHECK(second == 1);
    CHECK(third == 1);
}

TEST_CASE_METHOD(SlowBatches, "while draining, a racing handshake is turned away and subscribes are refused",
                 "[hub][shutdown]") {
    std::vector<ConnectionId> clients;
    for (int i = 0; i < 51; ++i) clients.push_back(connect());
    hub.shutdown();
    settle(io);
    REQUIRE(hub.draining());
    const auto late = transport.connect_racing_shutdown();
    settle(io);
    CHECK(transport.peer(late).close_code == close_code::going_away);
    CHECK(transport.peer(late).received.empty());  // no welcome

    // One client is still waiting for its batch: it may talk, but not join.
    const auto waiting = std::find_if(clients.begin(), clients.end(),
                                      [&](ConnectionId id) { return !transport.peer(id).close_code; });
    REQUIRE(waiting != clients.end());
    request(*waiting, R"({"type":"subscribe","channel":"room","id":1})");
    CHECK(received_of_type(*waiting, "error").size() == 1);
    CHECK(string_field(last(*waiting), "code") == "unavailable");
    CHECK(hub.channel_count() == 0);
}

TEST_CASE_METHOD(FakeBackend, "shutdown waits for the unsubscribes, up to a deadline", "[hub][shutdown]") {
    const auto a = connect();
    request(a, R"({"type":"subscribe","channel":"room"})");
    pubsub.complete_all();
    settle(io);
    bool done = false;
    hub.shutdown([&] { done = true; });
    settle(io);
    REQUIRE(pubsub.count(FakePubSub::Kind::unsubscribe, topic("room")) == 1);
    CHECK_FALSE(done);  // the unsubscribe is not confirmed yet
    pubsub.complete_all();
    REQUIRE(run_until(io, [&] { return done; }));
}

TEST_CASE_METHOD(FakeBackend, "an unsubscribe that never completes cannot hang shutdown", "[hub][shutdown]") {
    const auto a = connect();
    request(a, R"({"type":"subscribe","channel":"room"})");
    pubsub.complete_all();
    settle(io);
    bool done = false;
    hub.shutdown([&] { done = true; });
    REQUIRE(run_until(io, [&] { return done; }));  // the unsubscribe stays pending forever
    CHECK(pubsub.pending.size() == 1);
}
