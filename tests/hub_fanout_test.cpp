// Hub: fan-out of published messages on the in-process LocalPubSub, direct
// sends, and how PubSub outages reach clients (unavailable, gap).
#include <catch2/catch.hpp>

#include "support/fake_pubsub.hpp"
#include "support/hub_fixture.hpp"
#include "wshub/local_pubsub.hpp"

using namespace wshub;
using namespace wshub::test;

namespace {
struct Local : HubFixture<LocalPubSub> {};
struct Fake : HubFixture<FakePubSub> {};
}  // namespace

TEST_CASE_METHOD(Local, "welcome names the connection and the instance", "[hub][fanout]") {
    const auto a = connect();
    REQUIRE(received(a).size() == 1);
    const auto welcome = parse_frame(received(a)[0]);
    CHECK(std::string(welcome["type"].GetString()) == "welcome");
    CHECK(std::string(welcome["connection"].GetString()) == hub.public_id(a));
    CHECK(std::string(welcome["instance"].GetString()) == "test1");
}

TEST_CASE_METHOD(Local, "a publish reaches every subscriber and no one else, sharing one buffer", "[hub][fanout]") {
    std::vector<ConnectionId> subscribers;
    for (int i = 0; i < 20; ++i) {
        subscribers.push_back(connect());
        request(subscribers.back(), R"({"type":"subscribe","channel":"room"})");
    }
    const auto outsider = connect();
    request(outsider, R"({"type":"subscribe","channel":"other"})");
    const auto left = connect();
    request(left, R"({"type":"subscribe","channel":"room"})");
    request(left, R"({"type":"unsubscribe","channel":"room"})");
    REQUIRE(pubsub.is_subscribed(topic("room")));

    const std::string data = R"({"text":"hi \u00e9 \"q\"", "n": 1e400, "tiny": 1e-99999999999 , "a":[1, 2]})";
    request(subscribers[0], R"({"type":"publish","channel":"room","id":"p1","data":)" + data + "}");
    settle(io);

    const OutFrame* shared = nullptr;
    for (const auto id : subscribers) {
        const auto messages = received_of_type(id, "message");
        INFO(received(id).back());
        REQUIRE(messages.size() == 1);
        // data is passed byte for byte, not re-encoded
        CHECK(messages[0].find(data) != std::string::npos);
        CHECK(messages[0].find(R"("channel":"room")") != std::string::npos);
        const auto& sent = transport.peer(id).sent;
        const OutFrame* frame = nullptr;
        for (const auto& f : sent) {
            if (f->kind == FrameKind::message) frame = f.get();
        }
        REQUIRE(frame != nullptr);
        if (shared == nullptr) shared = frame;
        CHECK(frame == shared);  // the same encoded buffer for every subscriber
    }
    CHECK(received_of_type(outsider, "message").empty());
    CHECK(received_of_type(left, "message").empty());
    const auto acks = received_of_type(subscribers[0], "ack");
    REQUIRE(acks.size() == 1);
    CHECK(string_field(acks[0], "id") == "p1");
    CHECK(hub.stats().publishes == 1);
}

TEST_CASE_METHOD(Local, "messages arrive in publish order", "[hub][fanout]") {
    const auto a = connect();
    const auto b = connect();
    request(b, R"({"type":"subscribe","channel":"seq"})");
    for (int i = 0; i < 150; ++i) {
        transport.receive(a, R"({"type":"publish","channel":"seq","data":)" + std::to_string(i) + "}");
    }
    settle(io);
    const auto messages = received_of_type(b, "message");
    REQUIRE(messages.size() == 150);
    for (int i = 0; i < 150; ++i) CHECK(parse_frame(messages[i])["data"].GetInt() == i);
}

TEST_CASE_METHOD(Local, "a server-side publish reaches subscribers", "[hub][fanout]") {
    const auto a = connect();
    request(a, R"({"type":"subscribe","channel":"news"})");
    std::error_code result = make_error_code(error::internal);
    bool done = false;
    hub.publish("news", R"({"headline":"x"})", [&](std::error_code ec) {
        result = ec;
        done = true;
    });
    REQUIRE(run_until(io, [&] { return done; }));
    CHECK_FALSE(result);
    settle(io);
    REQUIRE(received_of_type(a, "message").size() == 1);

    done = false;
    hub.publish("bad channel", "1", [&](std::error_code ec) {
        result = ec;
        done = true;
    });
    REQUIRE(run_until(io, [&] { return done; }));
    CHECK(result == error::invalid_channel);
}

TEST_CASE_METHOD(Local, "direct send reaches exactly the target; unknown targets are not_found", "[hub][send]") {
    const auto a = connect();
    const auto b = connect();
    const auto c = connect();
    request(a, R"({"type":"send","to":")" + hub.public_id(b) + R"(","data":{"hello":true},"id":3})");
    const auto directs = received_of_type(b, "direct");
    REQUIRE(directs.size() == 1);
    CHECK(string_field(directs[0], "from") == hub.public_id(a));
    CHECK(parse_frame(directs[0])["data"]["hello"].GetBool());
    CHECK(received_of_type(c, "direct").empty());
    CHECK(received_of_type(a, "ack").size() == 1);

    for (const char* to : {"test1-999", "other-2", "nonsense", ""}) {
        request(a, std::string(R"({"type":"send","to":")") + to + R"(","data":1,"id":4})");
        CHECK(string_field(last(a), "code") == "not_found");
    }
    transport.disconnect(b);
    settle(io);
    request(a, R"({"type":"send","to":")" + hub.public_id(b) + R"(","data":1})");
    CHECK(string_field(last(a), "code") == "not_found");
}

TEST_CASE_METHOD(Local, "presence on a channel it is not enabled for answers not_found", "[hub][presence]") {
    const auto a = connect();
    request(a, R"({"type":"presence","channel":"room","id":1})");
    CHECK(string_field(last(a), "code") == "not_found");
    CHECK(parse_frame(last(a))["id"].GetInt() == 1);
}

TEST_CASE_METHOD(Local, "subscribe with since acks recovered=false without history", "[hub][subscribe]") {
    const auto a = connect();
    request(a, R"({"type":"subscribe","channel":"room","id":1,"since":{"offset":5,"epoch":"e"}})");
    const auto ack = parse_frame(last(a));
    CHECK(std::string(ack["type"].GetString()) == "ack");
    CHECK(ack["recovered"].IsFalse());
}

TEST_CASE_METHOD(Fake, "publishes while the PubSub is down fail fast with unavailable", "[hub][outage]") {
    const auto a = connect();
    pubsub.set_state(PubSubState::down);
    settle(io);
    CHECK_FALSE(hub.stats().pubsub_up);
    request(a, R"({"type":"publish","channel":"room","data":1,"id":9})");
    CHECK(string_field(last(a), "code") == "unavailable");
    CHECK(parse_frame(last(a))["id"].GetInt() == 9);
    CHECK(pubsub.count(FakePubSub::Kind::publish, topic("room")) == 0);

    pubsub.set_state(PubSubState::up);
    settle(io);
    request(a, R"({"type":"publish","channel":"room","data":1,"id":10})");
    REQUIRE(pubsub.count(FakePubSub::Kind::publish, topic("room")) == 1);
    // The envelope carries the origin instance and the raw data.
    CHECK(pubsub.history.back().payload == "w1 test1\n1");
    pubsub.complete(FakePubSub::Kind::publish, topic("room"), make_error_code(error::unavailable));
    settle(io);
    CHECK(string_field(last(a), "code") == "unavailable");  // a failed publish is never silent
}

TEST_CASE_METHOD(Fake, "after a resubscribe every subscriber of the channel gets gap", "[hub][outage]") {
    const auto a = connect();
    const auto b = connect();
    request(a, R"({"type":"subscribe","channel":"room"})");
    request(b, R"({"type":"subscribe","channel":"calm"})");
    pubsub.complete_all();
    settle(io);
    pubsub.set_state(PubSubState::down);
    pubsub.set_state(PubSubState::up);
    pubsub.resubscribed({topic("room"), topic("unknown"), "foreign-topic"});
    settle(io);
    const auto gaps = received_of_type(a, "gap");
    REQUIRE(gaps.size() == 1);
    CHECK(string_field(gaps[0], "channel") == "room");
    CHECK(received_of_type(b, "gap").empty());
}

TEST_CASE_METHOD(Fake, "malformed and foreign PubSub payloads are ignored", "[hub][fanout]") {
    const auto a = connect();
    request(a, R"({"type":"subscribe","channel":"room"})");
    pubsub.complete_all();
    settle(io);
    pubsub.deliver(topic("room"), "not an envelope");
    pubsub.deliver(topic("room"), "w1 x\n");
    pubsub.deliver("elsewhere", "w1 x\n1");
    pubsub.deliver(topic("nobody"), "w1 x\n1");
    settle(io);
    CHECK(received_of_type(a, "message").empty());
    pubsub.deliver(topic("room"), "w1 x\n[1]");
    settle(io);
    CHECK(received_of_type(a, "message").size() == 1);
}

TEST_CASE("a restarted instance (same instance id) never hands out an id of its earlier run", "[hub][direct]") {
    Local first;
    const auto old_conn = first.connect();
    const auto old_id = first.hub.public_id(old_conn);
    Local second;  // the same instance id "test1", ids from the transport start at 1 again
    const auto sender = second.connect();
    const auto new_conn = second.connect();
    REQUIRE(second.hub.public_id(old_conn) != old_id);
    CHECK(second.hub.public_id(new_conn) != old_id);
    CHECK(std::string(parse_frame(second.received(new_conn)[0])["connection"].GetString()) != old_id);
    // A send to the old id reaches nobody on the new run.
    second.request(sender, R"({"type":"send","to":")" + old_id + R"(","data":1,"id":1})");
    CHECK(string_field(second.last(sender), "code") == "not_found");
    CHECK(second.received_of_type(new_conn, "direct").empty());
    CHECK(second.received_of_type(sender, "direct").empty());
}
