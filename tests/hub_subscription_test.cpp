// Hub: lazy PubSub subscriptions, including the races between an in-flight
// subscribe and the channel emptying, and an unsubscribe followed at once by a
// subscribe. The FakePubSub lets each test complete PubSub calls by hand.
#include <catch2/catch.hpp>

#include "support/fake_pubsub.hpp"
#include "support/hub_fixture.hpp"

using namespace wshub;
using namespace wshub::test;
using Kind = FakePubSub::Kind;

namespace {
struct Fixture : HubFixture<FakePubSub> {};
}  // namespace

TEST_CASE_METHOD(Fixture, "first local subscriber subscribes, ack waits for the PubSub", "[hub][subscribe]") {
    const auto a = connect();
    request(a, R"({"type":"subscribe","channel":"room","id":1})");
    REQUIRE(pubsub.count(Kind::subscribe, topic("room")) == 1);
    CHECK(received_of_type(a, "ack").empty());  // not subscribed yet: no promise made

    REQUIRE(pubsub.complete(Kind::subscribe, topic("room")));
    settle(io);
    const auto acks = received_of_type(a, "ack");
    REQUIRE(acks.size() == 1);
    CHECK(parse_frame(acks[0])["id"].GetInt() == 1);
    CHECK(hub.subscriber_count("room") == 1);
}

TEST_CASE_METHOD(Fixture, "second subscriber reuses the subscription and is acked at once", "[hub][subscribe]") {
    const auto a = connect();
    const auto b = connect();
    request(a, R"({"type":"subscribe","channel":"room"})");
    pubsub.complete(Kind::subscribe, topic("room"));
    settle(io);
    request(b, R"({"type":"subscribe","channel":"room","id":"b1"})");
    CHECK(pubsub.count(Kind::subscribe, topic("room")) == 1);
    const auto acks = received_of_type(b, "ack");
    REQUIRE(acks.size() == 1);
    CHECK(std::string(parse_frame(acks[0])["id"].GetString()) == "b1");
    CHECK(hub.subscriber_count("room") == 2);
}

TEST_CASE_METHOD(Fixture, "last subscriber leaving unsubscribes; disconnect counts as leaving", "[hub][subscribe]") {
    const auto a = connect();
    const auto b = connect();
    request(a, R"({"type":"subscribe","channel":"room"})");
    request(b, R"({"type":"subscribe","channel":"room"})");
    pubsub.complete(Kind::subscribe, topic("room"));
    settle(io);

    request(a, R"({"type":"unsubscribe","channel":"room","id":7})");
    CHECK(received_of_type(a, "ack").size() == 1);
    CHECK(pubsub.count(Kind::unsubscribe, topic("room")) == 0);  // b is still there

    transport.disconnect(b);
    settle(io);
    CHECK(pubsub.count(Kind::unsubscribe, topic("room")) == 1);
    REQUIRE(pubsub.complete(Kind::unsubscribe, topic("room")));
    settle(io);
    CHECK(hub.channel_count() == 0);
    CHECK(hub.stats().subscriptions == 0);
}

TEST_CASE_METHOD(Fixture, "subscribe in flight when the channel empties ends unsubscribed", "[hub][subscribe][race]") {
    const auto a = connect();
    request(a, R"({"type":"subscribe","channel":"room"})");
    request(a, R"({"type":"unsubscribe","channel":"room"})");
    CHECK(pubsub.count(Kind::unsubscribe, topic("room")) == 0);  // never two calls in flight

    pubsub.complete(Kind::subscribe, topic("room"));
    settle(io);
    CHECK(pubsub.count(Kind::unsubscribe, topic("room")) == 1);
    pubsub.complete(Kind::unsubscribe, topic("room"));
    settle(io);
    CHECK(pubsub.pending.empty());
    CHECK(hub.channel_count() == 0);
    CHECK(pubsub.count(Kind::subscribe, topic("room")) == 1);
}

TEST_CASE_METHOD(Fixture, "unsubscribe followed at once by subscribe ends subscribed, once", "[hub][subscribe][race]") {
    const auto a = connect();
    const auto b = connect();
    request(a, R"({"type":"subscribe","channel":"room"})");
    pubsub.complete(Kind::subscribe, topic("room"));
    settle(io);
    request(a, R"({"type":"unsubscribe","channel":"room"})");
    REQUIRE(pubsub.count(Kind::unsubscribe, topic("room")) == 1);
    request(b, R"({"type":"subscribe","channel":"room","id":2})");
    CHECK(pubsub.count(Kind::subscribe, topic("room")) == 1);  // waits for the unsubscribe
    CHECK(received_of_type(b, "ack").empty());

    pubsub.complete(Kind::unsubscribe, topic("room"));
    settle(io);
    REQUIRE(pubsub.count(Kind::subscribe, topic("room")) == 2);
    pubsub.complete(Kind::subscribe, topic("room"));
    settle(io);
    CHECK(received_of_type(b, "ack").size() == 1);
    CHECK(pubsub.pending.empty());

    // Subscribed for real: a message reaches b.
    pubsub.deliver(topic("room"), "w1 other\n{\"x\":1}");
    settle(io);
    const auto messages = received_of_type(b, "message");
    REQUIRE(messages.size() == 1);
    CHECK(parse_frame(messages[0])["data"]["x"].GetInt() == 1);
}

TEST_CASE_METHOD(Fixture, "churn inside one in-flight call costs no extra PubSub call", "[hub][subscribe][race]") {
    const auto a = connect();
    request(a, R"({"type":"subscribe","channel":"room"})");
    for (int i = 0; i < 10; ++i) {
        request(a, R"({"type":"unsubscribe","channel":"room"})");
        request(a, R"({"type":"subscribe","channel":"room"})");
    }
    pubsub.complete_all();
    settle(io);
    CHECK(pubsub.pending.empty());
    CHECK(pubsub.count(Kind::subscribe, topic("room")) == 1);
    CHECK(pubsub.count(Kind::unsubscribe, topic("room")) == 0);
    CHECK(hub.subscriber_count("room") == 1);
}

TEST_CASE_METHOD(Fixture, "failed subscribe answers unavailable and leaves nothing behind", "[hub][subscribe]") {
    const auto a = connect();
    const auto b = connect();
    request(a, R"({"type":"subscribe","channel":"room","id":1})");
    request(b, R"({"type":"subscribe","channel":"room"})");  // no id: still told about the failure
    pubsub.complete(Kind::subscribe, topic("room"), make_error_code(error::unavailable));
    settle(io);
    for (const auto id : {a, b}) {
        const auto errors = received_of_type(id, "error");
        REQUIRE(errors.size() == 1);
        CHECK(string_field(errors[0], "code") == "unavailable");
    }
    CHECK(parse_frame(received_of_type(a, "error")[0])["id"].GetInt() == 1);
    CHECK(hub.channel_count() == 0);
    CHECK(hub.stats().subscriptions == 0);
    CHECK(pubsub.pending.empty());

    // A later subscribe tries again.
    request(a, R"({"type":"subscribe","channel":"room","id":2})");
    CHECK(pubsub.count(Kind::subscribe, topic("room")) == 2);
}

TEST_CASE_METHOD(Fixture, "subscribing twice to one channel is one subscription", "[hub][subscribe]") {
    const auto a = connect();
    request(a, R"({"type":"subscribe","channel":"room","id":1})");
    request(a, R"({"type":"subscribe","channel":"room","id":2})");
    pubsub.complete_all();
    settle(io);
    CHECK(received_of_type(a, "ack").size() == 2);
    CHECK(hub.subscriber_count("room") == 1);
    CHECK(hub.stats().subscriptions == 1);
}

TEST_CASE_METHOD(Fixture, "channels are independent", "[hub][subscribe]") {
    const auto a = connect();
    for (int i = 0; i < 5; ++i) request(a, R"({"type":"subscribe","channel":"c)" + std::to_string(i) + R"("})");
    CHECK(pubsub.pending.size() == 5);
    pubsub.complete_all();
    settle(io);
    CHECK(hub.channel_count() == 5);
    transport.disconnect(a);
    settle(io);
    CHECK(pubsub.pending.size() == 5);  // five unsubscribes
    pubsub.complete_all();
    settle(io);
    CHECK(hub.channel_count() == 0);
}

TEST_CASE_METHOD(Fixture, "unsubscribe while the subscribe is in flight answers both requests, in order",
                 "[hub][subscribe][race]") {
    const auto a = connect();
    request(a, R"({"type":"subscribe","channel":"room","id":1})");
    request(a, R"({"type":"unsubscribe","channel":"room","id":2})");
    const auto acks = received_of_type(a, "ack");
    REQUIRE(acks.size() == 2);
    CHECK(parse_frame(acks[0])["id"].GetInt() == 1);
    CHECK(parse_frame(acks[1])["id"].GetInt() == 2);
    pubsub.complete_all();
    settle(io);
    pubsub.complete_all();  // the unsubscribe that follows
    settle(io);
    CHECK(received_of_type(a, "ack").size() == 2);  // nothing answered twice
    CHECK(hub.channel_count() == 0);
}

TEST_CASE_METHOD(Fixture, "a subscribe with since but no id is told gap (nothing can be recovered)", "[hub][subscribe]") {
    const auto a = connect();
    request(a, R"({"type":"subscribe","channel":"room","since":{"offset":3,"epoch":"e"}})");
    pubsub.complete_all();
    settle(io);
    const auto gaps = received_of_type(a, "gap");
    REQUIRE(gaps.size() == 1);
    CHECK(string_field(gaps[0], "channel") == "room");
}
