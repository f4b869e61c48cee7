// Hub: the slow-client policies. A client that stops reading is evicted with
// 4008 (default) or has its channel messages dropped and later gets `gap`
// (DropAndGap); either way the other subscribers receive everything and the
// slow one's queue stays bounded.
#include <catch2/catch.hpp>

#include "support/hub_fixture.hpp"
#include "wshub/local_pubsub.hpp"

using namespace wshub;
using namespace wshub::test;

namespace {

HubConfig small_queues() {
    HubConfig config;
    config.instance_id = "slow";
    config.max_queue_messages = 10;
    config.max_queue_bytes = 64 * 1024;
    config.publish_rate_per_second = 0;  // the publisher is not what is tested here
    config.drain_check_interval = std::chrono::milliseconds(5);
    return config;
}

struct DropPolicies : DefaultPolicies {
    using slow_client = DropAndGap;
};

struct CloseFixture : HubFixture<LocalPubSub> {
    CloseFixture() : HubFixture<LocalPubSub>(small_queues()) {}
};
struct DropFixture : HubFixture<LocalPubSub, DropPolicies> {
    DropFixture() : HubFixture<LocalPubSub, DropPolicies>(small_queues()) {}
};

template <class F>
void publish_n(F& f, ConnectionId from, int n) {
    for (int i = 0; i < n; ++i) {
        f.transport.receive(from, R"({"type":"publish","channel":"room","data":)" + std::to_string(i) + "}");
        settle(f.io);
    }
}

}  // namespace

TEST_CASE_METHOD(CloseFixture, "a client that stops reading is evicted with 4008; others get everything",
                 "[hub][slow]") {
    const auto publisher = connect();
    const auto slow = connect();
    request(slow, R"({"type":"subscribe","channel":"room"})");
    std::vector<ConnectionId> readers;
    for (int i = 0; i < 100; ++i) {
        readers.push_back(connect());
        request(readers.back(), R"({"type":"subscribe","channel":"room"})");
    }
    transport.stall(slow);
    publish_n(*this, publisher, 50);

    CHECK(transport.peer(slow).close_code == close_code::slow_consumer);
    CHECK(transport.peer(slow).queue.size() <= 10);  // bounded: never more than the limit
    CHECK(hub.stats().evictions == 1);
    for (const auto id : readers) {
        const auto messages = received_of_type(id, "message");
        REQUIRE(messages.size() == 50);
        CHECK(parse_frame(messages.back())["data"].GetInt() == 49);
    }
    CHECK(hub.connection_count() == 101);  // the evicted one is gone once its close completes
}

TEST_CASE_METHOD(CloseFixture, "the byte limit evicts as well as the message limit", "[hub][slow]") {
    const auto publisher = connect();
    const auto slow = connect();
    request(slow, R"({"type":"subscribe","channel":"room"})");
    transport.stall(slow);
    const std::string big(30 * 1024, 'x');
    for (int i = 0; i < 3; ++i) {
        request(publisher, R"({"type":"publish","channel":"room","data":")" + big + R"("})");
    }
    CHECK(transport.peer(slow).close_code == close_code::slow_consumer);
    std::size_t queued = 0;
    for (const auto& f : transport.peer(slow).queue) queued += f->payload.size();
    CHECK(queued <= 64 * 1024);
}

TEST_CASE_METHOD(DropFixture, "drop policy: messages dropped while over the limit, then one gap per channel",
                 "[hub][slow]") {
    const auto publisher = connect();
    const auto slow = connect();
    const auto reader = connect();
    request(slow, R"({"type":"subscribe","channel":"room"})");
    request(reader, R"({"type":"subscribe","channel":"room"})");
    transport.stall(slow);
    publish_n(*this, publisher, 30);

    CHECK_FALSE(transport.peer(slow).close_code.has_value());  // not evicted
    CHECK(transport.peer(slow).queue.size() <= 10);
    CHECK(hub.stats().dropped_messages >= 20);
    CHECK(received_of_type(reader, "message").size() == 30);

    // The client drains; the hub notices and owes it exactly one gap for "room".
    transport.drain(slow);
    REQUIRE(run_until(io, [&] { return !received_of_type(slow, "gap").empty(); }));
    const auto gaps = received_of_type(slow, "gap");
    CHECK(gaps.size() == 1);
    CHECK(string_field(gaps[0], "channel") == "room");

    // And it receives again afterwards, after the gap.
    publish_n(*this, publisher, 1);
    const auto& frames = received(slow);
    CHECK(frame_type(frames.back()) == "message");
    CHECK(parse_frame(frames.back())["data"].GetInt() == 0);
}

TEST_CASE_METHOD(DropFixture, "drop policy never drops acks and errors, but the hard cap still evicts",
                 "[hub][slow]") {
    const auto slow = connect();
    transport.stall(slow);
    // Requests whose answers pile up: errors are control frames, never dropped...
    for (int i = 0; i < 15; ++i) {
        transport.receive(slow, R"({"type":"unsubscribe","channel":"nope","id":1})");
        settle(io);
    }
    CHECK(transport.peer(slow).queue.size() == 15);  // 15 errors, beyond the limit of 10
    CHECK_FALSE(transport.peer(slow).close_code.has_value());
    // ...until twice the limit: memory stays bounded whatever the policy.
    for (int i = 0; i < 10; ++i) {
        transport.receive(slow, R"({"type":"unsubscribe","channel":"nope","id":1})");
        settle(io);
    }
    CHECK(transport.peer(slow).close_code == close_code::slow_consumer);
    CHECK(transport.peer(slow).queue.size() <= 20);
}
