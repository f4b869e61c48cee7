// Hub: hostile and malformed client input, end to end through the hub on the
// in-memory transport. Each gets the error code of docs/protocol.md, and the
// connection keeps working where the protocol says it does.
#include <catch2/catch.hpp>

#include <string>

#include "support/hub_fixture.hpp"
#include "wshub/local_pubsub.hpp"

using namespace wshub;
using namespace wshub::test;

namespace {

HubConfig bad_input_config() {
    HubConfig config;
    config.instance_id = "bad";
    config.max_bad_frames_in_row = 8;
    config.max_subscriptions_per_connection = 64;
    config.max_message_bytes = 64 * 1024;
    return config;
}

struct Fixture : HubFixture<LocalPubSub> {
    Fixture() : HubFixture<LocalPubSub>(bad_input_config()) {}

    // Sends one frame and returns the error code it got ("" if none).
    std::string error_code_for(ConnectionId id, std::string frame, MessageKind kind = MessageKind::text) {
        const auto before = received_of_type(id, "error").size();
        request(id, std::move(frame), kind);
        const auto errors = received_of_type(id, "error");
        if (errors.size() == before) return {};
        return string_field(errors.back(), "code");
    }

    // The connection still works: a subscribe is acked.
    bool still_works(ConnectionId id) {
        const auto before = received_of_type(id, "ack").size();
        request(id, R"({"type":"subscribe","channel":"alive","id":"ok"})");
        request(id, R"({"type":"unsubscribe","channel":"alive"})");
        return received_of_type(id, "ack").size() == before + 1 && transport.peer(id).open;
    }
};

}  // namespace

TEST_CASE_METHOD(Fixture, "malformed frames get bad_request and the connection stays open", "[hub][bad]") {
    const auto a = connect();
    const std::vector<std::string> frames = {
        "not json",
        "",
        "[1,2,3]",
        "\"just a string\"",
        "42",
        R"({"type":"dance"})",
        R"({"channel":"room"})",
        R"({"type":7,"channel":"room"})",
        R"({"type":"subscribe"})",
        R"({"type":"subscribe","channel":5})",
        R"({"type":"publish","channel":"room"})",
        R"({"type":"send","data":1})",
        R"({"type":"subscribe","channel":"room","id":1.5})",
        R"({"type":"subscribe","channel":"r\xC3\x28"})",  // a \x escape, which JSON does not have (raw string: not bytes)
        "{\"type\":\"subscribe\",\"channel\":\"\xFF\"}",
    };
    for (const auto& frame : frames) {
        INFO(frame);
        CHECK(error_code_for(a, frame) == "bad_request");
        // a good frame in between keeps the bad-frame count from closing the connection
        REQUIRE(still_works(a));
    }
}

TEST_CASE_METHOD(Fixture, "invalid UTF-8 bytes inside a publish's data get bad_request and the connection stays open",
                 "[hub][bad]") {
    const auto a = connect();
    request(a, R"({"type":"subscribe","channel":"a","id":"s"})");
    REQUIRE(received_of_type(a, "ack").size() == 1);
    // Real bytes, not escapes: no raw strings here.
    const std::vector<std::string> bad_data = {
        "\xC3\x28",          // a lead byte followed by a non-continuation byte
        "ok\xFF",             // a byte that never appears in UTF-8
        "\xE2\x82",          // a truncated three-byte sequence
        "\xC0\xAF",          // an overlong encoding of '/'
        "\xED\xA0\x80",      // an encoded UTF-16 surrogate
        "\xF4\x90\x80\x80",  // above U+10FFFF
    };
    for (std::size_t i = 0; i < bad_data.size(); ++i) {
        const std::string frame = std::string("{\"type\":\"publish\",\"channel\":\"a\",\"data\":\"") + bad_data[i] + "\"}";
        INFO("bad_data[" << i << "]");
        const auto messages_before = received_of_type(a, "message").size();
        CHECK(error_code_for(a, frame) == "bad_request");
        CHECK(received_of_type(a, "message").size() == messages_before);  // nothing was published
        REQUIRE(still_works(a));
    }
    // The same frame with valid bytes is published.
    request(a, std::string("{\"type\":\"publish\",\"channel\":\"a\",\"data\":\"\xC3\xA9\"}"));
    const auto messages = received_of_type(a, "message");
    REQUIRE(messages.size() == 1);
    CHECK(string_field(messages.back(), "data") == "\xC3\xA9");
}

TEST_CASE_METHOD(Fixture, "the id of a bad request is echoed when it can be read", "[hub][bad]") {
    const auto a = connect();
    request(a, R"({"type":"dance","id":"x1"})");
    CHECK(string_field(last(a), "code") == "bad_request");
    CHECK(string_field(last(a), "id") == "x1");
}

TEST_CASE_METHOD(Fixture, "binary frames get bad_request", "[hub][bad]") {
    const auto a = connect();
    CHECK(error_code_for(a, R"({"type":"subscribe","channel":"room"})", MessageKind::binary) == "bad_request");
    CHECK(still_works(a));
}

TEST_CASE_METHOD(Fixture, "bad channel names get invalid_channel", "[hub][bad]") {
    const auto a = connect();
    const std::vector<std::string> names = {
        "a*b", "a?b", "a[b", "a]b", "a b", "a\\r\\nb", "a\\u0000b", std::string(129, 'c'), "",
        "caf\\u00e9", "tab\\there",
    };
    for (const auto& name : names) {
        INFO(name);
        for (const char* type : {"subscribe", "unsubscribe", "publish", "presence"}) {
            const std::string frame = std::string(R"({"type":")") + type + R"(","channel":")" + name + R"(","data":1})";
            CHECK(error_code_for(a, frame) == "invalid_channel");
            REQUIRE(still_works(a));
        }
    }
    CHECK(hub.channel_count() == 0);
    // The longest valid name and every allowed byte are fine.
    request(a, R"({"type":"subscribe","channel":")" + std::string(128, 'c') + R"(","id":1})");
    CHECK(frame_type(last(a)) == "ack");
    request(a, R"({"type":"subscribe","channel":"AZaz09_-.:@/=","id":2})");
    CHECK(frame_type(last(a)) == "ack");
}

TEST_CASE_METHOD(Fixture, "deep nesting is refused in bounded time", "[hub][bad]") {
    const auto a = connect();
    // Sized to pass the 64 KiB frame limit and reach the decoder (the codec's
    // own tests send 100,000 '[' and 500,000 '{"a":').
    std::string brackets(60'000, '[');
    CHECK(error_code_for(a, R"({"type":"publish","channel":"room","data":)" + brackets + "}") == "bad_request");
    CHECK(still_works(a));
    std::string objects;
    for (int i = 0; i < 10'000; ++i) objects += R"({"a":)";
    CHECK(error_code_for(a, R"({"type":"publish","channel":"room","data":)" + objects + "}") == "bad_request");
    CHECK(still_works(a));
}

TEST_CASE_METHOD(Fixture, "a frame over the size limit closes with 1009", "[hub][bad]") {
    const auto a = connect();
    std::string objects;
    for (int i = 0; i < 500'000; ++i) objects += R"({"a":)";
    request(a, objects);
    CHECK(transport.peer(a).close_code == close_code::too_big);
}

TEST_CASE_METHOD(Fixture, "extreme numbers inside data pass through untouched", "[hub][bad]") {
    const auto a = connect();
    request(a, R"({"type":"subscribe","channel":"n"})");
    const std::string data = R"([1e-99999999999,1e400,-0.0E+00,123456789012345678901234567890,1E-400])";
    request(a, R"({"type":"publish","channel":"n","data":)" + data + "}");
    const auto messages = received_of_type(a, "message");
    REQUIRE(messages.size() == 1);
    CHECK(messages[0] == R"({"type":"message","channel":"n","data":)" + data + "}");
}

TEST_CASE_METHOD(Fixture, "the 65th subscription gets too_many_subscriptions", "[hub][bad]") {
    const auto a = connect();
    for (int i = 0; i < 64; ++i) {
        request(a, R"({"type":"subscribe","channel":"c)" + std::to_string(i) + R"(","id":1})");
        REQUIRE(frame_type(last(a)) == "ack");
    }
    CHECK(error_code_for(a, R"({"type":"subscribe","channel":"c64","id":1})") == "too_many_subscriptions");
    CHECK(hub.subscriber_count("c64") == 0);
    // Leaving one makes room again.
    request(a, R"({"type":"unsubscribe","channel":"c0"})");
    request(a, R"({"type":"subscribe","channel":"c64","id":2})");
    CHECK(frame_type(last(a)) == "ack");
}

TEST_CASE_METHOD(Fixture, "unsubscribe from a channel never joined gets not_subscribed", "[hub][bad]") {
    const auto a = connect();
    CHECK(error_code_for(a, R"({"type":"unsubscribe","channel":"never","id":3})") == "not_subscribed");
    CHECK(string_field(last(a), "id") == "");  // integer id: check it below
    CHECK(parse_frame(last(a))["id"].GetInt() == 3);
    CHECK(still_works(a));
}

TEST_CASE_METHOD(Fixture, "8 bad frames in a row close with 1008; a good frame resets the count", "[hub][bad]") {
    const auto a = connect();
    for (int i = 0; i < 7; ++i) request(a, "garbage");
    CHECK(transport.peer(a).open);
    CHECK(still_works(a));  // resets the count
    for (int i = 0; i < 7; ++i) request(a, "garbage");
    CHECK(transport.peer(a).open);
    request(a, "garbage");
    CHECK(transport.peer(a).close_code == close_code::policy_violation);
    CHECK(received_of_type(a, "error").size() == 15);  // every bad frame was answered first
}

TEST_CASE("publishing faster than the budget gets rate_limited", "[hub][bad]") {
    HubConfig config = bad_input_config();
    config.publish_rate_per_second = 1;  // a bucket that effectively does not refill during the test
    config.publish_burst = 3;
    HubFixture<LocalPubSub> f(config);
    const auto a = f.connect();
    for (int i = 0; i < 3; ++i) {
        f.request(a, R"({"type":"publish","channel":"r","data":1,"id":1})");
    }
    settle(f.io);
    CHECK(f.received_of_type(a, "ack").size() == 3);
    f.request(a, R"({"type":"publish","channel":"r","data":1,"id":1})");
    CHECK(string_field(f.last(a), "code") == "rate_limited");
}
