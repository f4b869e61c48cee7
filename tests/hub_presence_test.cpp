// Hub on one instance (NoRegistry, LocalPubSub): presence answered from the
// hub's own state, join/leave events with the user id, and direct messages to
// every connection of a user. The same features across instances, over a real
// Redis, are in connection_registry_test.cpp.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "support/hub_fixture.hpp"
#include "wshub/local_pubsub.hpp"

using namespace wshub;
using namespace wshub::test;

namespace {

HubConfig presence_config() {
    HubConfig config = HubFixture<LocalPubSub>::test_config();
    config.presence_prefixes = {"room:"};
    config.publish_rate_per_second = 0;
    return config;
}

struct Presence : HubFixture<LocalPubSub> {
    Presence() : HubFixture<LocalPubSub>(presence_config()) {}

    ConnectionId connect_as(const std::string& user) {
        ConnectionInfo info;
        info.user_id = user;
        return connect(std::move(info));
    }
};

}  // namespace

TEST_CASE_METHOD(Presence, "presence lists the channel's members with their users", "[hub][presence]") {
    const auto alice = connect_as("alice");
    const auto anonymous = connect();
    const auto outsider = connect_as("olga");
    request(alice, R"({"type":"subscribe","channel":"room:1"})");
    request(anonymous, R"({"type":"subscribe","channel":"room:1"})");
    request(outsider, R"({"type":"subscribe","channel":"room:2"})");

    request(outsider, R"({"type":"presence","channel":"room:1","id":"who"})");
    const auto ack = parse_frame(last(outsider));
    REQUIRE(std::string(ack["type"].GetString()) == "ack");
    CHECK(std::string(ack["id"].GetString()) == "who");
    std::set<std::string> members;
    for (const auto& m : ack["members"].GetArray()) members.insert(m.GetString());
    CHECK(members == std::set<std::string>{hub.public_id(alice), hub.public_id(anonymous)});
    CHECK(ack["users"].MemberCount() == 1);
    CHECK(std::string(ack["users"][hub.public_id(alice).c_str()].GetString()) == "alice");

    // A channel nobody is in has no members; one without presence says so.
    request(outsider, R"({"type":"presence","channel":"room:empty","id":2})");
    CHECK(parse_frame(last(outsider))["members"].Size() == 0);
    request(outsider, R"({"type":"presence","channel":"lobby","id":3})");
    CHECK(string_field(last(outsider), "code") == "not_found");
    // Without an id nobody would read the answer: nothing is sent.
    const auto frames = received(outsider).size();
    request(outsider, R"({"type":"presence","channel":"room:1"})");
    CHECK(received(outsider).size() == frames);
}

TEST_CASE_METHOD(Presence, "subscribers hear join and leave, with the user; other channels do not", "[hub][presence]") {
    const auto watcher = connect_as("wendy");
    const auto elsewhere = connect_as("eve");
    request(watcher, R"({"type":"subscribe","channel":"room:1"})");
    request(elsewhere, R"({"type":"subscribe","channel":"room:2"})");

    const auto bob = connect_as("bob");
    request(bob, R"({"type":"subscribe","channel":"room:1"})");
    // (A connection may or may not hear its own join: wendy, the channel's
    // first subscriber, joined before the PubSub subscription was up.)
    auto joins = received_of_type(watcher, "join");
    REQUIRE_FALSE(joins.empty());
    CHECK(joins.size() <= 2);
    CHECK(string_field(joins.back(), "connection") == hub.public_id(bob));
    CHECK(string_field(joins.back(), "user") == "bob");
    CHECK(string_field(joins.back(), "channel") == "room:1");

    request(bob, R"({"type":"unsubscribe","channel":"room:1"})");
    auto leaves = received_of_type(watcher, "leave");
    REQUIRE(leaves.size() == 1);
    CHECK(string_field(leaves.back(), "connection") == hub.public_id(bob));

    // A disconnect is a leave too.
    const auto carl = connect();
    request(carl, R"({"type":"subscribe","channel":"room:1"})");
    transport.disconnect(carl);
    settle(io);
    leaves = received_of_type(watcher, "leave");
    REQUIRE(leaves.size() == 2);
    CHECK(string_field(leaves.back(), "connection") == hub.public_id(carl));
    CHECK_FALSE(parse_frame(leaves.back()).HasMember("user"));  // anonymous

    for (const auto& join : received_of_type(elsewhere, "join")) {
        CHECK(string_field(join, "connection") == hub.public_id(elsewhere));
    }
    CHECK(received_of_type(elsewhere, "leave").empty());
}

TEST_CASE_METHOD(Presence, "a send to user:<id> reaches every connection of that user", "[hub][direct]") {
    const auto sender = connect_as("sam");
    const auto alice1 = connect_as("alice");
    const auto alice2 = connect_as("alice");
    const auto bob = connect_as("bob");

    request(sender, R"({"type":"send","to":"user:alice","data":{"t":1},"id":5})");
    CHECK(string_field(last(sender), "type") == "ack");
    for (const auto conn : {alice1, alice2}) {
        const auto directs = received_of_type(conn, "direct");
        REQUIRE(directs.size() == 1);
        CHECK(directs[0] == R"({"type":"direct","from":")" + hub.public_id(sender) + R"(","data":{"t":1}})");
    }
    CHECK(received_of_type(bob, "direct").empty());

    request(sender, R"({"type":"send","to":"user:nobody","data":1,"id":6})");
    CHECK(string_field(last(sender), "code") == "not_found");
    request(sender, R"({"type":"send","to":"user:","data":1,"id":7})");
    CHECK(string_field(last(sender), "code") == "not_found");

    // A user whose last connection closed is gone.
    transport.disconnect(bob);
    settle(io);
    request(sender, R"({"type":"send","to":"user:bob","data":1,"id":8})");
    CHECK(string_field(last(sender), "code") == "not_found");

    // The server-side API does the same, with its own sender name.
    std::error_code result = make_error_code(error::internal);
    hub.send_to_user("alice", R"("hi")", "ops", [&](std::error_code ec) { result = ec; });
    settle(io);
    CHECK_FALSE(result);
    CHECK(received_of_type(alice2, "direct").back() == R"({"type":"direct","from":"ops","data":"hi"})");
    hub.send_to_connection(hub.public_id(alice1), "2", "ops", [&](std::error_code ec) { result = ec; });
    settle(io);
    CHECK_FALSE(result);
    CHECK(received_of_type(alice1, "direct").size() == 3);
    hub.send_to_connection("test1-999", "2", "ops", [&](std::error_code ec) { result = ec; });
    settle(io);
    CHECK(result == make_error_code(error::not_found));
}

TEST_CASE("presence_filter decides instead of the prefixes", "[hub][presence]") {
    HubConfig config = presence_config();
    config.presence_filter = [](std::string_view channel) { return channel == "lobby"; };
    CHECK(config.presence_enabled("lobby"));
    CHECK_FALSE(config.presence_enabled("room:1"));
    HubConfig all;
    all.presence_prefixes = {""};
    CHECK(all.presence_enabled("anything"));
    CHECK_FALSE(HubConfig{}.presence_enabled("room:1"));
}
