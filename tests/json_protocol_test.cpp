// Tests for JsonProtocol, the default protocol policy: every client frame it
// decodes, every server frame it encodes, and every kind of bad input the wire
// protocol (docs/protocol.md) says must become a bad_request.
//
// Server frames are parsed back with RapidJSON's Document. That is fine here and
// only here: it reads our own output, never untrusted input.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "wshub/json_protocol.hpp"

using wshub::ClientRequest;
using wshub::DecodeLimits;
using wshub::DecodeResult;
using wshub::JsonProtocol;
using wshub::RequestType;

namespace {

std::string repeat(std::string_view piece, std::size_t times) {
    std::string out;
    out.reserve(piece.size() * times);
    for (std::size_t i = 0; i < times; ++i) out.append(piece);
    return out;
}

DecodeResult decode(std::string_view frame, std::size_t max_depth = 32) {
    DecodeLimits limits;
    limits.max_nesting_depth = max_depth;
    return JsonProtocol::decode(frame, limits);
}

ClientRequest decode_ok(std::string_view frame) {
    DecodeResult result = decode(frame);
    INFO("frame: " << frame << "\nerror: " << result.error.message);
    REQUIRE(result.ok());
    return *result.request;
}

// A rejected frame: bad_request with a message that is plain printable ASCII
// (so it cannot carry a client's hostile bytes back to anyone).
wshub::DecodeError decode_bad(std::string_view frame, std::size_t max_depth = 32) {
    DecodeResult result = decode(frame, max_depth);
    INFO("frame: " << (frame.size() > 200 ? std::string(frame.substr(0, 200)) + "..." : std::string(frame)));
    REQUIRE_FALSE(result.ok());
    CHECK(result.error.code == wshub::error::bad_request);
    CHECK_FALSE(result.error.message.empty());
    for (const char c : result.error.message) {
        CHECK((c >= 0x20 && c < 0x7F));
    }
    return result.error;
}

rapidjson::Document parse(const std::string& frame) {
    rapidjson::Document doc;
    doc.Parse(frame.data(), frame.size());
    INFO("frame: " << frame);
    REQUIRE_FALSE(doc.HasParseError());
    REQUIRE(doc.IsObject());
    // Every server frame names its type first, so a client can dispatch on a prefix.
    REQUIRE(doc.MemberBegin() != doc.MemberEnd());
    CHECK(std::string(doc.MemberBegin()->name.GetString()) == "type");
    return doc;
}

std::string str(const rapidjson::Value& v) {
    REQUIRE(v.IsString());
    return std::string(v.GetString(), v.GetStringLength());
}

std::size_t member_count(const rapidjson::Value& v) {
    return static_cast<std::size_t>(v.MemberEnd() - v.MemberBegin());
}

}  // namespace

// ---------------------------------------------------------------------------
// Decoding valid client frames

TEST_CASE("decode: subscribe without id, with a string id and with integer ids", "[json_protocol]") {
    ClientRequest r = decode_ok(R"({"type":"subscribe","channel":"room:1"})");
    CHECK(r.type == RequestType::subscribe);
    CHECK(r.channel == "room:1");
    CHECK(r.id.empty());
    CHECK_FALSE(r.since.has_value());
    CHECK(r.data.empty());

    r = decode_ok(R"({"type":"subscribe","channel":"room:1","id":"abc"})");
    CHECK(r.id == "\"abc\"");  // the raw token, quotes included

    r = decode_ok(R"({"id":42,"type":"subscribe","channel":"c"})");
    CHECK(r.id == "42");
    r = decode_ok(R"({"id":-7,"type":"subscribe","channel":"c"})");
    CHECK(r.id == "-7");
    r = decode_ok(R"({"id":0,"type":"subscribe","channel":"c"})");
    CHECK(r.id == "0");
    r = decode_ok(R"({"id":"a\"b\u00e9","type":"subscribe","channel":"c"})");
    CHECK(r.id == R"("a\"b\u00e9")");  // escapes stay as they were on the wire
    r = decode_ok(R"({"id":"","type":"subscribe","channel":"c"})");
    CHECK(r.id == "\"\"");
}

TEST_CASE("decode: subscribe with since", "[json_protocol]") {
    ClientRequest r = decode_ok(R"({"type":"subscribe","channel":"c","since":{"offset":17,"epoch":"e-1"}})");
    REQUIRE(r.since.has_value());
    CHECK(r.since->offset == 17);
    CHECK(r.since->epoch == "e-1");

    r = decode_ok(R"({"type":"subscribe","channel":"c","since":{ "epoch" : "\u00e9" , "offset" : 0 }})");
    REQUIRE(r.since.has_value());
    CHECK(r.since->offset == 0);
    CHECK(r.since->epoch == "\xC3\xA9");

    r = decode_ok(R"({"type":"subscribe","channel":"c","since":{"offset":18446744073709551615,"epoch":""}})");
    REQUIRE(r.since.has_value());
    CHECK(r.since->offset == std::numeric_limits<std::uint64_t>::max());

    // Unknown keys inside "since" are ignored, as at the top level.
    r = decode_ok(R"({"type":"subscribe","channel":"c","since":{"offset":1,"epoch":"e","later":[1,2]}})");
    REQUIRE(r.since.has_value());
    CHECK(r.since->offset == 1);
}

TEST_CASE("decode: unsubscribe, presence, publish and send", "[json_protocol]") {
    ClientRequest r = decode_ok(R"({"type":"unsubscribe","channel":"a","id":1})");
    CHECK(r.type == RequestType::unsubscribe);
    CHECK(r.channel == "a");
    CHECK(r.id == "1");

    r = decode_ok(R"({"type":"presence","channel":"lobby"})");
    CHECK(r.type == RequestType::presence);
    CHECK(r.channel == "lobby");
    CHECK(r.id.empty());

    r = decode_ok(R"({"type":"publish","channel":"news","data":{"text":"hi"},"id":"p1"})");
    CHECK(r.type == RequestType::publish);
    CHECK(r.channel == "news");
    CHECK(r.data == R"({"text":"hi"})");
    CHECK(r.id == "\"p1\"");

    r = decode_ok(R"({"type":"send","to":"conn-9","data":"hello"})");
    CHECK(r.type == RequestType::send);
    CHECK(r.to == "conn-9");
    CHECK(r.data == "\"hello\"");
    CHECK(r.channel.empty());
    CHECK(r.id.empty());

    r = decode_ok(R"({"type":"send","to":"x","data":null,"id":3})");
    CHECK(r.data == "null");
}

TEST_CASE("decode: key order, whitespace, escaped keys and unknown keys", "[json_protocol]") {
    ClientRequest r = decode_ok(" \r\n\t{ \"data\" : [ 1 ] , \"channel\" :\"c\",\n\"type\"\t:\t\"publish\" } \r\n");
    CHECK(r.type == RequestType::publish);
    CHECK(r.data == "[ 1 ]");

    // Keys and the type compare decoded.
    r = decode_ok(R"({"\u0074ype":"\u0073ubscribe","ch\u0061nnel":"c"})");
    CHECK(r.type == RequestType::subscribe);
    CHECK(r.channel == "c");

    // Unknown keys, of any kind and nesting, are ignored for forward compatibility.
    r = decode_ok(R"({"type":"subscribe","channel":"c","v":2,"meta":{"a":[{"b":null}]},"x":"y","z":1e400})");
    CHECK(r.channel == "c");

    // Fields that belong to other request types are ignored too, even when malformed for them.
    r = decode_ok(R"({"type":"publish","channel":"c","data":1,"since":5,"to":7})");
    CHECK(r.type == RequestType::publish);
    CHECK_FALSE(r.since.has_value());
    CHECK(r.to.empty());
}

TEST_CASE("decode: channel and to are decoded but not validated", "[json_protocol]") {
    ClientRequest r = decode_ok(R"({"type":"subscribe","channel":"a\/b\u00e9\n \"q\""})");
    CHECK(r.channel == "a/b\xC3\xA9\n \"q\"");

    r = decode_ok(R"({"type":"subscribe","channel":""})");
    CHECK(r.channel.empty());

    r = decode_ok(R"({"type":"subscribe","channel":"has space*?[]"})");
    CHECK(r.channel == "has space*?[]");

    r = decode_ok(R"({"type":"send","to":"\ud83d\ude00","data":0})");
    CHECK(r.to == "\xF0\x9F\x98\x80");
}

TEST_CASE("decode: data is passed through byte for byte", "[json_protocol]") {
    const std::vector<std::string> payloads = {
        "1e-99999999999",
        "1e400",
        "-0.0E+00",
        "123456789012345678901234567890123456789012345678901234567890",
        "-98765432109876543210987654321e-5",
        "[[[[[[[[[[]]]]]]]]]]",
        "[ 1 ,\t2 ,\r\n [ 3 , [ ] ] ]",
        "{ \"a\" : { \"b\" : [ true , false , null ] } , \"c\" : \"\\u00e9\\n\\\"\" }",
        "\"raw \xC3\xA9 \xF0\x9D\x84\x9E and \\ud800 lone escape\"",
        "true",
        "null",
        "\"\"",
        "{}",
    };
    for (const auto& payload : payloads) {
        const std::string frame = "{\"type\":\"publish\",\"channel\":\"c\",\"data\":" + payload + ",\"id\":1}";
        const ClientRequest r = decode_ok(frame);
        CHECK(r.data == payload);
        // The span points into the frame, so forwarding it copies nothing extra.
        CHECK(r.data.data() == frame.data() + frame.find(payload));

        // And it reaches subscribers unchanged.
        CHECK(JsonProtocol::message(r.channel, r.data) ==
              "{\"type\":\"message\",\"channel\":\"c\",\"data\":" + payload + "}");

        const std::string send = "{\"type\":\"send\",\"to\":\"x\",\"data\": " + payload + " }";
        const ClientRequest s = decode_ok(send);
        CHECK(s.data == payload);
        CHECK(JsonProtocol::direct(s.to, s.data) == "{\"type\":\"direct\",\"from\":\"x\",\"data\":" + payload + "}");
    }
}

TEST_CASE("decode: nesting up to the limit is accepted, one more level is not", "[json_protocol]") {
    // The top-level object is level 1, so data can nest 31 more levels under the default 32.
    const std::string data_ok = repeat("[", 31) + repeat("]", 31);
    const std::string data_deep = repeat("[", 32) + repeat("]", 32);
    CHECK(decode_ok("{\"type\":\"publish\",\"channel\":\"c\",\"data\":" + data_ok + "}").data == data_ok);
    const auto e = decode_bad("{\"type\":\"publish\",\"channel\":\"c\",\"data\":" + data_deep + ",\"id\":5}");
    CHECK(e.message.find("deeper than 32") != std::string::npos);
    CHECK(e.id.empty());  // a frame that is not accepted as JSON has no trustworthy id

    // The limit comes from DecodeLimits.
    CHECK(decode(R"({"type":"publish","channel":"c","data":[[1]]})", 3).ok());
    decode_bad(R"({"type":"publish","channel":"c","data":[[1]]})", 2);
    decode_bad(R"({"type":"subscribe","channel":"c"})", 0);
}

// ---------------------------------------------------------------------------
// Decoding bad client frames

TEST_CASE("decode: not JSON, not an object, empty, trailing garbage", "[json_protocol]") {
    CHECK(decode_bad("").message == "empty frame");
    CHECK(decode_bad(" \t\r\n ").message == "empty frame");
    decode_bad("hello");
    decode_bad("{");
    decode_bad("}");
    decode_bad(R"({"type":"subscribe","channel":"c")");
    decode_bad(R"({"type":"subscribe",,"channel":"c"})");
    decode_bad(R"({"type":"subscribe","channel":"c",})");
    decode_bad(R"({type:"subscribe"})");
    decode_bad(R"({'type':'subscribe'})");
    decode_bad(std::string("\0", 1));

    CHECK(decode_bad(R"(["subscribe"])").message == "frame must be a JSON object");
    CHECK(decode_bad(R"("subscribe")").message == "frame must be a JSON object");
    CHECK(decode_bad("42").message == "frame must be a JSON object");
    CHECK(decode_bad("null").message == "frame must be a JSON object");
    CHECK(decode_bad("true").message == "frame must be a JSON object");

    const auto trailing = decode_bad(R"({"type":"subscribe","channel":"c","id":1} x)");
    CHECK(trailing.message.find("after the JSON value") != std::string::npos);
    CHECK(trailing.id.empty());
    decode_bad(R"({"type":"subscribe","channel":"c"}{})");
    decode_bad(R"({"type":"subscribe","channel":"c"},)");
    decode_bad(std::string(R"({"type":"subscribe","channel":"c"})") + '\0');
}

TEST_CASE("decode: hostile nesting is rejected with bounded work", "[json_protocol]") {
    CHECK(decode_bad(repeat("[", 100000)).message == "frame must be a JSON object");
    CHECK(decode_bad(repeat("{\"a\":", 500000)).message.find("deeper than 32") != std::string::npos);
    CHECK(decode_bad("{\"type\":\"publish\",\"channel\":\"c\",\"data\":" + repeat("[", 100000))
              .message.find("deeper") != std::string::npos);
}

TEST_CASE("decode: type missing, not a string, or unknown", "[json_protocol]") {
    CHECK(decode_bad(R"({})").message == "missing \"type\"");
    CHECK(decode_bad(R"({"channel":"c"})").message == "missing \"type\"");
    CHECK(decode_bad(R"({"type":1,"channel":"c"})").message == "\"type\" must be a string");
    CHECK(decode_bad(R"({"type":null,"channel":"c"})").message == "\"type\" must be a string");
    CHECK(decode_bad(R"({"type":["subscribe"],"channel":"c"})").message == "\"type\" must be a string");
    CHECK(decode_bad(R"({"type":"Subscribe","channel":"c"})").message == "unknown type");
    CHECK(decode_bad(R"({"type":"subscribe ","channel":"c"})").message == "unknown type");
    CHECK(decode_bad(R"({"type":"","channel":"c"})").message == "unknown type");
    CHECK(decode_bad(R"({"type":"message","channel":"c"})").message == "unknown type");
    CHECK(decode_bad(R"({"type":"\ud800","channel":"c"})").message == "unknown type");
}

TEST_CASE("decode: missing or wrong-typed fields name the field", "[json_protocol]") {
    struct Case {
        const char* frame;
        const char* message;
    };
    const std::vector<Case> cases = {
        {R"({"type":"subscribe"})", "missing \"channel\""},
        {R"({"type":"subscribe","channel":1})", "\"channel\" must be a string"},
        {R"({"type":"subscribe","channel":null})", "\"channel\" must be a string"},
        {R"({"type":"subscribe","channel":["a"]})", "\"channel\" must be a string"},
        {R"({"type":"subscribe","channel":{"name":"a"}})", "\"channel\" must be a string"},
        {R"({"type":"subscribe","channel":"\ud800"})", "\"channel\" holds an unpaired surrogate escape"},
        {R"({"type":"subscribe","channel":"a\udc00b"})", "\"channel\" holds an unpaired surrogate escape"},
        {R"({"type":"unsubscribe"})", "missing \"channel\""},
        {R"({"type":"unsubscribe","channel":true})", "\"channel\" must be a string"},
        {R"({"type":"presence"})", "missing \"channel\""},
        {R"({"type":"presence","channel":5})", "\"channel\" must be a string"},
        {R"({"type":"publish","data":1})", "missing \"channel\""},
        {R"({"type":"publish","channel":1,"data":1})", "\"channel\" must be a string"},
        {R"({"type":"publish","channel":"c"})", "missing \"data\""},
        {R"({"type":"send","data":1})", "missing \"to\""},
        {R"({"type":"send","to":1,"data":1})", "\"to\" must be a string"},
        {R"({"type":"send","to":"\ud800","data":1})", "\"to\" holds an unpaired surrogate escape"},
        {R"({"type":"send","to":"x"})", "missing \"data\""},
        {R"({"type":"send","channel":"x","data":1})", "missing \"to\""},
    };
    for (const auto& c : cases) {
        INFO(c.frame);
        CHECK(decode_bad(c.frame).message == c.message);
    }
}

TEST_CASE("decode: bad ids", "[json_protocol]") {
    const std::vector<std::string> bad_ids = {
        "1.5", "1e3", "1E3", "-0.0", "{}", "{\"a\":1}", "[]", "[1]", "true", "false", "null",
    };
    for (const auto& id : bad_ids) {
        INFO("id " << id);
        const auto e = decode_bad(R"({"type":"subscribe","channel":"c","id":)" + id + "}");
        CHECK(e.message == "\"id\" must be a string or an integer");
        CHECK(e.id.empty());
    }

    // Limits are on the raw token: 256 bytes for strings, 20 characters for integers.
    const std::string id256 = "\"" + std::string(254, 'x') + "\"";
    const std::string id257 = "\"" + std::string(255, 'x') + "\"";
    CHECK(decode_ok(R"({"type":"subscribe","channel":"c","id":)" + id256 + "}").id == id256);
    const auto long_id = decode_bad(R"({"type":"subscribe","channel":"c","id":)" + id257 + "}");
    CHECK(long_id.message == "\"id\" is longer than 256 bytes");
    CHECK(long_id.id.empty());
    // Escapes count as their raw size: 43 escaped characters take 258 bytes.
    decode_bad(R"({"type":"subscribe","channel":"c","id":")" + repeat("\\u0041", 43) + "\"}");

    for (const std::string id : {"123456789012345678901", "-12345678901234567890"}) {  // 21 characters
        INFO("id " << id);
        const auto e = decode_bad(R"({"type":"subscribe","channel":"c","id":)" + id + "}");
        CHECK(e.message == "\"id\" is longer than 20 characters");
        CHECK(e.id.empty());
    }
    CHECK(decode_ok(R"({"type":"subscribe","channel":"c","id":12345678901234567890})").id == "12345678901234567890");
    CHECK(decode_ok(R"({"type":"subscribe","channel":"c","id":-1234567890123456789})").id == "-1234567890123456789");
}

TEST_CASE("decode: errors echo the id whenever the frame was an object with a valid id", "[json_protocol]") {
    CHECK(decode_bad(R"({"type":"nope","id":"r1"})").id == "\"r1\"");
    CHECK(decode_bad(R"({"id":7,"type":"nope"})").id == "7");
    CHECK(decode_bad(R"({"id":7})").id == "7");
    CHECK(decode_bad(R"({"id":7,"type":3})").id == "7");
    CHECK(decode_bad(R"({"id":"x","type":"subscribe"})").id == "\"x\"");
    CHECK(decode_bad(R"({"id":"x","type":"publish","channel":"c"})").id == "\"x\"");
    CHECK(decode_bad(R"({"id":"x","type":"subscribe","channel":"c","since":-1})").id == "\"x\"");
    CHECK(decode_bad(R"({"id":"x","type":"subscribe","channel":"c","channel":"d"})").id == "\"x\"");

    // Not a valid object, or not a valid id: nothing to echo.
    CHECK(decode_bad(R"({"id":"x","type":"nope")").id.empty());
    CHECK(decode_bad(R"({"id":"x","type":"nope"} [])").id.empty());
    CHECK(decode_bad(R"({"id":1.0,"type":"nope"})").id.empty());
    CHECK(decode_bad(R"({"id":"x","id":"y","type":"subscribe","channel":"c"})").id.empty());

    // The echoed id points into the frame.
    const std::string frame = R"({"type":"nope","id":"abc"})";
    const auto e = decode(frame).error;
    CHECK(e.id.data() == frame.data() + frame.find("\"abc\""));
}

TEST_CASE("decode: duplicate keys are rejected, compared after decoding", "[json_protocol]") {
    CHECK(decode_bad(R"({"type":"subscribe","type":"subscribe","channel":"c"})").message == "duplicate key \"type\"");
    CHECK(decode_bad(R"({"type":"subscribe","channel":"a","channel":"b"})").message == "duplicate key \"channel\"");
    CHECK(decode_bad(R"({"type":"publish","channel":"a","data":1,"data":2})").message == "duplicate key \"data\"");
    CHECK(decode_bad(R"({"type":"send","to":"a","to":"b","data":1})").message == "duplicate key \"to\"");
    CHECK(decode_bad(R"({"type":"subscribe","channel":"a","since":{"offset":1,"epoch":"e"},"since":{"offset":2,"epoch":"e"}})")
              .message == "duplicate key \"since\"");
    CHECK(decode_bad(R"({"type":"subscribe","channel":"a","id":1,"id":2})").message == "duplicate key \"id\"");
    CHECK(decode_bad(R"({"type":"subscribe","channel":"a","\u0074ype":"publish"})").message ==
          "duplicate key \"type\"");
    // Unknown keys must be unique too, and their names are not echoed.
    CHECK(decode_bad(R"({"type":"subscribe","channel":"a","<x>":1,"b":2,"<x>":3})").message == "duplicate key");
    CHECK(decode_bad(R"({"type":"subscribe","channel":"a","k":1,"\u006b":2})").message == "duplicate key");
    // Keys in nested values are the client's business: "data" is forwarded as is.
    CHECK(decode_ok(R"({"type":"publish","channel":"a","data":{"k":1,"k":2}})").data == R"({"k":1,"k":2})");
}

TEST_CASE("decode: bad since", "[json_protocol]") {
    const std::string shape = "\"since\" must be {\"offset\": <non-negative integer>, \"epoch\": <string>}";
    const std::vector<std::string> bad_since = {
        R"({"offset":-1,"epoch":"e"})",
        R"({"offset":-0,"epoch":"e"})",
        R"({"offset":1.5,"epoch":"e"})",
        R"({"offset":1.0,"epoch":"e"})",
        R"({"offset":1e3,"epoch":"e"})",
        R"({"offset":"5","epoch":"e"})",
        R"({"offset":null,"epoch":"e"})",
        R"({"offset":5})",
        R"({"epoch":"e"})",
        R"({"offset":5,"epoch":5})",
        R"({"offset":5,"epoch":null})",
        R"({})",
        R"(5)",
        R"("5:e")",
        R"([5,"e"])",
        R"(null)",
    };
    for (const auto& since : bad_since) {
        INFO("since " << since);
        CHECK(decode_bad(R"({"type":"subscribe","channel":"c","since":)" + since + "}").message == shape);
    }
    CHECK(decode_bad(R"({"type":"subscribe","channel":"c","since":{"offset":18446744073709551616,"epoch":"e"}})")
              .message == "\"since.offset\" does not fit in 64 bits");
    CHECK(decode_bad(R"({"type":"subscribe","channel":"c","since":{"offset":99999999999999999999999,"epoch":"e"}})")
              .message == "\"since.offset\" does not fit in 64 bits");
    CHECK(decode_bad(R"({"type":"subscribe","channel":"c","since":{"offset":1,"offset":2,"epoch":"e"}})").message ==
          "duplicate key in \"since\"");
    CHECK(decode_bad(R"({"type":"subscribe","channel":"c","since":{"offset":1,"epoch":"\ud800"}})").message ==
          "\"since.epoch\" holds an unpaired surrogate escape");
}

TEST_CASE("decode: invalid strings anywhere in the frame are rejected", "[json_protocol]") {
    const std::vector<std::string> bad_strings = {
        "\"\xC0\xAF\"",          // overlong '/'
        "\"\xE0\x80\xAF\"",      // overlong 3-byte
        "\"\xED\xA0\x80\"",      // UTF-8 encoded surrogate
        "\"\xED\xBF\xBF\"",
        "\"\xF4\x90\x80\x80\"",  // above U+10FFFF
        "\"\xC3\"",              // truncated
        "\"\xE2\x82\"",
        "\"\xFF\"",
        "\"\xFE\xFF\"",
        "\"a\x01" "b\"",         // raw control characters
        "\"a\tb\"",
        "\"a\nb\"",
        std::string("\"a\0b\"", 5),
        "\"\\x41\"",             // bad escapes
        "\"\\'\"",
        "\"\\u00G1\"",
        "\"\\u00\"",
    };
    for (const auto& s : bad_strings) {
        INFO("string index " << (&s - bad_strings.data()));
        decode_bad(R"({"type":"subscribe","channel":)" + s + "}");
        decode_bad(R"({"type":"publish","channel":"c","data":{"k":)" + s + "}}");
        decode_bad(R"({"type":)" + s + "}");
        decode_bad("{" + s + R"(:1,"type":"subscribe","channel":"c"})");
        decode_bad(R"({"type":"subscribe","channel":"c","id":)" + s + "}");
    }
}

TEST_CASE("decode: malformed numbers are rejected wherever they appear", "[json_protocol]") {
    for (const std::string number : {"01", "-01", "1.", ".5", "1e", "1e+", "-", "+1", "1.2.3", "0x1", "NaN"}) {
        INFO("number " << number);
        decode_bad(R"({"type":"publish","channel":"c","data":)" + number + "}");
        decode_bad(R"({"type":"publish","channel":"c","data":[)" + number + "]}");
        decode_bad(R"({"type":"subscribe","channel":"c","id":)" + number + "}");
        decode_bad(R"({"type":"subscribe","channel":"c","other":)" + number + "}");
    }
}

TEST_CASE("decode: error messages never echo the frame's bytes", "[json_protocol]") {
    const std::vector<std::string> frames = {
        R"({"type":"<script>alert(1)</script>"})",
        R"({"type":"subscribe","<script>":1,"<script>":2,"channel":"c"})",
        R"({"type":"publish","channel":"<script>"})",
        R"({"type":"subscribe","channel":"c","since":{"offset":"<script>","epoch":"e"}})",
        R"({"type":"subscribe","channel":"c"}<script>)",
        R"(<script>)",
        "{\"type\":\"<script>\xFF\"}",
    };
    for (const auto& frame : frames) {
        CHECK(decode_bad(frame).message.find("script") == std::string::npos);
    }
}

// ---------------------------------------------------------------------------
// Encoding server frames

TEST_CASE("encode: welcome", "[json_protocol]") {
    const std::string frame = JsonProtocol::welcome("c-1", "node-a");
    CHECK(frame == R"({"type":"welcome","connection":"c-1","instance":"node-a"})");
    const auto doc = parse(frame);
    CHECK(str(doc["connection"]) == "c-1");
    CHECK(str(doc["instance"]) == "node-a");
}

TEST_CASE("encode: ack echoes string and integer ids verbatim", "[json_protocol]") {
    CHECK(JsonProtocol::ack("\"r1\"") == R"({"type":"ack","id":"r1"})");
    CHECK(JsonProtocol::ack("42") == R"({"type":"ack","id":42})");
    CHECK(JsonProtocol::ack("-1234567890123456789") == R"({"type":"ack","id":-1234567890123456789})");
    CHECK(JsonProtocol::ack(R"("a\"b\u00e9")") == R"({"type":"ack","id":"a\"b\u00e9"})");
    const auto doc = parse(JsonProtocol::ack(R"("a\"b\u00e9")"));
    CHECK(str(doc["id"]) == "a\"b\xC3\xA9");
    CHECK(member_count(doc) == 2);

    // The id a decode returns is exactly what the ack needs.
    const ClientRequest r = decode_ok(R"({"type":"unsubscribe","channel":"c","id":"x\\y"})");
    CHECK(JsonProtocol::ack(r.id) == R"({"type":"ack","id":"x\\y"})");

    // No id at all: still valid JSON, just without "id".
    CHECK(JsonProtocol::ack("") == R"({"type":"ack"})");
}

TEST_CASE("encode: subscribe_ack with and without a history position", "[json_protocol]") {
    std::string frame = JsonProtocol::subscribe_ack("1", false, std::nullopt, "ignored");
    CHECK(frame == R"({"type":"ack","id":1,"recovered":false})");
    auto doc = parse(frame);
    CHECK(doc["recovered"].IsFalse());
    CHECK_FALSE(doc.HasMember("offset"));
    CHECK_FALSE(doc.HasMember("epoch"));

    const std::uint64_t big = (std::uint64_t{1} << 63) + 5;
    frame = JsonProtocol::subscribe_ack("\"s\"", true, big, "ep\"och");
    doc = parse(frame);
    CHECK(str(doc["type"]) == "ack");
    CHECK(str(doc["id"]) == "s");
    CHECK(doc["recovered"].IsTrue());
    REQUIRE(doc["offset"].IsUint64());
    CHECK(doc["offset"].GetUint64() == big);
    CHECK(str(doc["epoch"]) == "ep\"och");

    CHECK(JsonProtocol::subscribe_ack("2", true, 0, "e") ==
          R"({"type":"ack","id":2,"recovered":true,"offset":0,"epoch":"e"})");
}

TEST_CASE("encode: presence_ack lists the members and their users", "[json_protocol]") {
    CHECK(JsonProtocol::presence_ack("3", {}) == R"({"type":"ack","id":3,"members":[],"users":{}})");
    const std::vector<wshub::PresenceMember> members = {
        {"a", "alice"}, {"b\"c", ""}, {"\xC3\xA9", "\xC3\xA9t\xC3\xA9"}, {std::string("nul\0", 4), "x\ny"}};
    const auto doc = parse(JsonProtocol::presence_ack("\"p\"", members));
    CHECK(str(doc["id"]) == "p");
    const auto& list = doc["members"];
    REQUIRE(list.IsArray());
    REQUIRE(list.Size() == members.size());
    for (rapidjson::SizeType i = 0; i < list.Size(); ++i) CHECK(str(list[i]) == members[i].connection);
    const auto& users = doc["users"];
    REQUIRE(users.IsObject());
    CHECK(users.MemberCount() == 3);  // the anonymous one is left out
    CHECK(str(users["a"]) == "alice");
    CHECK(str(users["\xC3\xA9"]) == "\xC3\xA9t\xC3\xA9");
    CHECK(str(users[rapidjson::Value(std::string("nul\0", 4).c_str(), 4)]) == "x\ny");
    CHECK_FALSE(users.HasMember("b\"c"));
}

TEST_CASE("encode: error frames map every error to its protocol code", "[json_protocol]") {
    using wshub::error;
    CHECK(JsonProtocol::error_frame("\"q\"", error::invalid_channel, "bad name") ==
          R"({"type":"error","id":"q","code":"invalid_channel","message":"bad name"})");
    CHECK(JsonProtocol::error_frame("", error::bad_request, "unknown type") ==
          R"({"type":"error","code":"bad_request","message":"unknown type"})");

    const std::vector<error> all = {
        error::bad_request, error::forbidden,   error::invalid_channel, error::too_many_subscriptions,
        error::not_subscribed, error::rate_limited, error::not_found, error::unavailable,
        error::too_large,   error::internal,    error::shutting_down, error::connection_closed,
        error::timed_out,
    };
    for (const error e : all) {
        const auto doc = parse(JsonProtocol::error_frame("9", e, "m"));
        CHECK(str(doc["type"]) == "error");
        CHECK(doc["id"].GetInt() == 9);
        CHECK(str(doc["code"]) == std::string(wshub::protocol_code(e)));
        CHECK(str(doc["message"]) == "m");
    }
    CHECK(str(parse(JsonProtocol::error_frame("", error::shutting_down, "m"))["code"]) == "unavailable");

    // A DecodeError turns into an error frame that echoes the id.
    const auto bad = decode(R"({"type":"nope","id":"r7"})").error;
    const auto doc = parse(JsonProtocol::error_frame(bad.id, bad.code, bad.message));
    CHECK(str(doc["id"]) == "r7");
    CHECK(str(doc["code"]) == "bad_request");
    CHECK(str(doc["message"]) == "unknown type");
}

TEST_CASE("encode: message with and without offset, direct, gap, join and leave", "[json_protocol]") {
    CHECK(JsonProtocol::message("news", R"({"t":1})") == R"({"type":"message","channel":"news","data":{"t":1}})");
    CHECK(JsonProtocol::message("news", "[1, 2]", 18446744073709551615u, "e1") ==
          R"({"type":"message","channel":"news","data":[1, 2],"offset":18446744073709551615,"epoch":"e1"})");
    CHECK(JsonProtocol::direct("conn-1", "\"hi\"") == R"({"type":"direct","from":"conn-1","data":"hi"})");
    CHECK(JsonProtocol::gap("news") == R"({"type":"gap","channel":"news"})");
    CHECK(JsonProtocol::join("lobby", "c-2") == R"({"type":"join","channel":"lobby","connection":"c-2"})");
    CHECK(JsonProtocol::leave("lobby", "c-2") == R"({"type":"leave","channel":"lobby","connection":"c-2"})");
    CHECK(JsonProtocol::join("lobby", "c-2", "bob") ==
          R"({"type":"join","channel":"lobby","connection":"c-2","user":"bob"})");

    const auto doc = parse(JsonProtocol::message("a:b", R"({"x":[1,{"y":null}]})", 12, "ep"));
    CHECK(str(doc["channel"]) == "a:b");
    CHECK(doc["data"]["x"][1]["y"].IsNull());
    CHECK(doc["offset"].GetUint64() == 12);
    CHECK(str(doc["epoch"]) == "ep");
    CHECK(member_count(doc) == 5);
}

TEST_CASE("encode: strings are escaped correctly in every frame", "[json_protocol]") {
    std::string tricky = "quote\" backslash\\ slash/ </script> \x7F caf\xC3\xA9 \xE2\x82\xAC \xF0\x9D\x84\x9E";
    for (int c = 0; c < 0x20; ++c) tricky.push_back(static_cast<char>(c));

    auto check_round_trip = [&](const std::string& frame, std::initializer_list<const char*> fields) {
        INFO(frame);
        // No raw control byte may reach the wire.
        for (const char c : frame) CHECK(static_cast<unsigned char>(c) >= 0x20);
        CHECK(wshub::detail::is_valid_utf8(frame));
        // And our own scanner accepts what we write.
        CHECK(wshub::detail::JsonScanner(frame, 8).validate());
        const auto doc = parse(frame);
        for (const char* field : fields) CHECK(str(doc[field]) == tricky);
    };
    check_round_trip(JsonProtocol::welcome(tricky, tricky), {"connection", "instance"});
    check_round_trip(JsonProtocol::error_frame("1", wshub::error::internal, tricky), {"message"});
    check_round_trip(JsonProtocol::subscribe_ack("1", true, 1, tricky), {"epoch"});
    check_round_trip(JsonProtocol::message(tricky, "0"), {"channel"});
    check_round_trip(JsonProtocol::message(tricky, "0", 1, tricky), {"channel", "epoch"});
    check_round_trip(JsonProtocol::direct(tricky, "0"), {"from"});
    check_round_trip(JsonProtocol::gap(tricky), {"channel"});
    check_round_trip(JsonProtocol::join(tricky, tricky, tricky), {"channel", "connection", "user"});
    check_round_trip(JsonProtocol::leave(tricky, tricky, tricky), {"channel", "connection", "user"});

    // Control characters use the short escapes where JSON has them.
    CHECK(JsonProtocol::gap("\b\f\n\r\t\x01") == R"({"type":"gap","channel":"\b\f\n\r\t\u0001"})");
    // Non-ASCII is written as UTF-8, not as \u escapes.
    CHECK(JsonProtocol::gap("\xC3\xA9") == "{\"type\":\"gap\",\"channel\":\"\xC3\xA9\"}");
}

TEST_CASE("encode: invalid UTF-8 in a server string still yields a valid frame", "[json_protocol]") {
    const std::string frame = JsonProtocol::error_frame("", wshub::error::internal, "bad \xFF\xC0\x80 bytes");
    CHECK(wshub::detail::is_valid_utf8(frame));
    const auto doc = parse(frame);
    CHECK(str(doc["message"]) == "bad \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD bytes");
}

TEST_CASE("encode: message reserves its exact size", "[json_protocol]") {
    // One allocation for the fan-out frame: the reservation covers the whole output.
    const std::string data(5000, '1');
    const std::string frame = JsonProtocol::message("channel", data);
    CHECK(frame.size() == 29 + 7 + 9 + 5000 + 1);
    CHECK(frame.capacity() >= frame.size());
    CHECK(frame.capacity() <= frame.size() + 64);

    const std::string with_offset = JsonProtocol::message("channel", data, 123, "epoch");
    CHECK(with_offset.capacity() <= with_offset.size() + 64);
}
