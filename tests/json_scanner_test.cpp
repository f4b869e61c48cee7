// Tests for the pieces the JSON codec is built on: UTF-8 validation
// (detail/utf8.hpp), the iterative scanner and the string-token decoder
// (detail/json_scanner.hpp). No sockets, no hub: pure functions over bytes.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "wshub/detail/json_scanner.hpp"
#include "wshub/detail/utf8.hpp"

using wshub::detail::append_utf8;
using wshub::detail::decode_json_string;
using wshub::detail::is_valid_utf8;
using wshub::detail::JsonKind;
using wshub::detail::JsonMember;
using wshub::detail::JsonScanner;
using wshub::detail::ScanError;
using wshub::detail::to_valid_utf8;

namespace {

std::string repeat(std::string_view piece, std::size_t times) {
    std::string out;
    out.reserve(piece.size() * times);
    for (std::size_t i = 0; i < times; ++i) out.append(piece);
    return out;
}

ScanError validate_error(std::string_view text, std::size_t max_depth = 32) {
    JsonScanner scanner(text, max_depth);
    const bool ok = scanner.validate();
    // validate() and error() must agree: success means no error and vice versa.
    CHECK(ok == (scanner.error() == ScanError::none));
    return scanner.error();
}

struct Walk {
    std::vector<JsonMember> members;
    ScanError error = ScanError::none;
    std::size_t error_offset = 0;
};

Walk walk(std::string_view text, std::size_t max_depth = 32) {
    Walk result;
    JsonScanner scanner(text, max_depth);
    JsonMember member;
    if (scanner.begin_object()) {
        while (scanner.next_member(member)) result.members.push_back(member);
    }
    result.error = scanner.error();
    result.error_offset = scanner.error_offset();
    return result;
}

}  // namespace

TEST_CASE("utf8: well-formed sequences at the edges of each range are accepted", "[utf8]") {
    const std::vector<std::string> valid = {
        "",
        "plain ascii",
        "\x7F",
        "\xC2\x80",          // U+0080, smallest 2-byte
        "\xC3\xA9",          // é
        "\xDF\xBF",          // U+07FF
        "\xE0\xA0\x80",      // U+0800, smallest 3-byte
        "\xE2\x82\xAC",      // €
        "\xED\x9F\xBF",      // U+D7FF, just below the surrogates
        "\xEE\x80\x80",      // U+E000, just above them
        "\xEF\xBF\xBF",      // U+FFFF
        "\xF0\x90\x80\x80",  // U+10000, smallest 4-byte
        "\xF0\x9D\x84\x9E",  // 𝄞
        "\xF4\x8F\xBF\xBF",  // U+10FFFF, the last code point
        "mixed \xC3\xA9 and \xF0\x9D\x84\x9E in a longer line of ASCII text",
    };
    for (const auto& text : valid) {
        INFO("index " << (&text - valid.data()));
        CHECK(is_valid_utf8(text));
    }
}

TEST_CASE("utf8: overlong, surrogate, out-of-range, stray and truncated sequences are rejected", "[utf8]") {
    const std::vector<std::string> invalid = {
        "\xC0\x80",          // overlong NUL
        "\xC1\xBF",          // overlong U+007F
        "\xE0\x80\x80",      // overlong 3-byte
        "\xE0\x9F\xBF",      // overlong U+07FF
        "\xF0\x80\x80\x80",  // overlong 4-byte
        "\xF0\x8F\xBF\xBF",  // overlong U+FFFF
        "\xED\xA0\x80",      // U+D800
        "\xED\xBF\xBF",      // U+DFFF
        "\xED\xA0\xBD\xED\xB8\x80",  // a surrogate pair encoded as two 3-byte forms (CESU-8)
        "\xF4\x90\x80\x80",  // U+110000
        "\xF5\x80\x80\x80",
        "\xF8\x88\x80\x80\x80",  // old 5-byte form
        "\xFE",
        "\xFF",
        "\x80",              // stray continuation
        "\xBF",
        "\xC3",              // truncated 2-byte
        "\xE2\x82",          // truncated 3-byte
        "\xF0\x9D\x84",      // truncated 4-byte
        "\xE2\x82" "a",      // truncated, then ASCII
        "\xC3\xA9\xA9",      // valid, then a stray continuation
    };
    for (const auto& text : invalid) {
        INFO("index " << (&text - invalid.data()));
        CHECK_FALSE(is_valid_utf8(text));
    }
}

TEST_CASE("utf8: a bad byte is found at every position of a long ASCII run", "[utf8]") {
    // is_valid_utf8 skips ASCII eight bytes at a time; make sure no position is skipped over.
    for (std::size_t at = 0; at < 40; ++at) {
        std::string text(40, 'a');
        text[at] = '\xFF';
        INFO("bad byte at " << at);
        CHECK_FALSE(is_valid_utf8(text));
    }
    CHECK(is_valid_utf8(std::string(1000, 'x')));
}

TEST_CASE("utf8: append_utf8 encodes each length and to_valid_utf8 replaces bad bytes", "[utf8]") {
    std::string out;
    append_utf8(out, 0x41);
    append_utf8(out, 0xE9);
    append_utf8(out, 0x20AC);
    append_utf8(out, 0x1D11E);
    append_utf8(out, 0x10FFFF);
    CHECK(out == "A\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E\xF4\x8F\xBF\xBF");

    CHECK(to_valid_utf8("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
    CHECK(to_valid_utf8("\xC3") == "\xEF\xBF\xBD");
    CHECK(to_valid_utf8("ok \xC3\xA9") == "ok \xC3\xA9");
    CHECK(is_valid_utf8(to_valid_utf8("\xED\xA0\x80\xC0\x80\xF4\x90")));
}

TEST_CASE("decode_json_string: plain text, every escape, and \\u escapes to UTF-8", "[json_scanner]") {
    CHECK(decode_json_string(R"("")") == std::string());
    CHECK(decode_json_string(R"("hello")") == std::string("hello"));
    CHECK(decode_json_string(R"("a\"b\\c\/d\be\ff\ng\rh\ti")") == std::string("a\"b\\c/d\be\ff\ng\rh\ti"));
    CHECK(decode_json_string(R"("\u0041")") == std::string("A"));
    CHECK(decode_json_string(R"("\u0000")") == std::string("\0", 1));
    CHECK(decode_json_string(R"("\u00e9\u00E9")") == std::string("\xC3\xA9\xC3\xA9"));
    CHECK(decode_json_string(R"("\u20ac")") == std::string("\xE2\x82\xAC"));
    CHECK(decode_json_string(R"("\ud834\udd1e")") == std::string("\xF0\x9D\x84\x9E"));
    CHECK(decode_json_string(R"("\uDBFF\uDFFF")") == std::string("\xF4\x8F\xBF\xBF"));
    CHECK(decode_json_string("\"raw \xC3\xA9 \xF0\x9D\x84\x9E\"") == std::string("raw \xC3\xA9 \xF0\x9D\x84\x9E"));
}

TEST_CASE("decode_json_string: lone surrogates and malformed tokens fail", "[json_scanner]") {
    const std::vector<std::string> bad = {
        R"("\ud800")",         // lead with nothing after it
        R"("\ud800a")",        // lead followed by a plain character
        R"("\ud800\n")",       // lead followed by another escape
        R"("\ud800\ud800")",   // two leads
        R"("\ud800\u0041")",   // lead followed by a non-surrogate
        R"("\udc00")",         // trail with no lead
        R"("\udfff\ud800")",   // reversed pair
        R"("\x")",             // unknown escape
        R"("\u12")",           // short \u
        R"("\u12g4")",         // non-hex digit
        R"("abc\")",           // escaped closing quote: unterminated
        R"("a"b")",            // a raw quote inside
        R"(abc)",              // no quotes
        R"(")",                // a lone quote
        "",
        "\"a\x01" "b\"",       // raw control character
        "\"\xC0\x80\"",        // overlong
        "\"\xED\xA0\x80\"",    // UTF-8 encoded surrogate
        "\"\xFF\"",
    };
    for (const auto& token : bad) {
        INFO("index " << (&token - bad.data()));
        CHECK_FALSE(decode_json_string(token).has_value());
    }
}

TEST_CASE("scanner: valid JSON of every kind is accepted", "[json_scanner]") {
    const std::vector<std::string> valid = {
        "0", "-0", "7", "-12", "0.5", "-0.0E+00", "1e400", "1e-99999999999", "1E5", "1e+5", "2.5e-3",
        "123456789012345678901234567890123456789012345678901234567890",
        "-0.000000000000000000000000000000000000000000000000000000000001",
        R"("")", R"("text")", R"("\u00e9\n\"\\")", "\"\xF0\x9D\x84\x9E\"",
        R"("\ud800")",  // a lone surrogate escape is grammatical (RFC 8259 section 8.2)
        "true", "false", "null",
        "[]", "{}", "[ ]", "{ }",
        R"([1,[2,{"a":[]}],"x",null,true,false,-1.5e3])",
        R"({"a":{"b":{"c":[{"d":null}]}},"e":"f"})",
        " \t\r\n[ 1 , 2 ] \r\n\t ",
        "{ \"a\" : 1 , \"b\" : { } }",
    };
    for (const auto& text : valid) {
        INFO(text);
        CHECK(validate_error(text) == ScanError::none);
    }
}

TEST_CASE("scanner: numbers are checked by grammar", "[json_scanner]") {
    CHECK(validate_error("01") == ScanError::invalid_number);
    CHECK(validate_error("-01") == ScanError::invalid_number);
    CHECK(validate_error("00") == ScanError::invalid_number);
    CHECK(validate_error("1.") == ScanError::invalid_number);
    CHECK(validate_error("1.e5") == ScanError::invalid_number);
    CHECK(validate_error("1e") == ScanError::invalid_number);
    CHECK(validate_error("1e+") == ScanError::invalid_number);
    CHECK(validate_error("1E-") == ScanError::invalid_number);
    CHECK(validate_error("-") == ScanError::invalid_number);
    CHECK(validate_error("-a") == ScanError::invalid_number);
    CHECK(validate_error("--1") == ScanError::invalid_number);
    CHECK(validate_error("1.5.3") == ScanError::invalid_number);
    CHECK(validate_error("1e5e5") == ScanError::invalid_number);
    CHECK(validate_error("[01]") == ScanError::invalid_number);
    CHECK(validate_error(".5") == ScanError::unexpected_character);
    CHECK(validate_error("+1") == ScanError::unexpected_character);
    CHECK(validate_error("0x10") == ScanError::trailing_characters);
    CHECK(validate_error("NaN") == ScanError::unexpected_character);
    CHECK(validate_error("Infinity") == ScanError::unexpected_character);
    CHECK(validate_error("-Infinity") == ScanError::invalid_number);
}

TEST_CASE("scanner: structural errors", "[json_scanner]") {
    CHECK(validate_error("") == ScanError::unexpected_end);
    CHECK(validate_error(" \t\r\n") == ScanError::unexpected_end);
    CHECK(validate_error("[") == ScanError::unexpected_end);
    CHECK(validate_error("[1") == ScanError::unexpected_end);
    CHECK(validate_error("[1,") == ScanError::unexpected_end);
    CHECK(validate_error("{") == ScanError::unexpected_end);
    CHECK(validate_error(R"({"a")") == ScanError::unexpected_end);
    CHECK(validate_error(R"({"a":)") == ScanError::unexpected_end);
    CHECK(validate_error("[1,]") == ScanError::unexpected_character);
    CHECK(validate_error("[,1]") == ScanError::unexpected_character);
    CHECK(validate_error("[1 2]") == ScanError::unexpected_character);
    CHECK(validate_error("[1}") == ScanError::unexpected_character);
    CHECK(validate_error(R"({"a":1])") == ScanError::unexpected_character);
    CHECK(validate_error(R"({"a"})") == ScanError::unexpected_character);
    CHECK(validate_error(R"({"a":})") == ScanError::unexpected_character);
    CHECK(validate_error(R"({"a":1,})") == ScanError::unexpected_character);
    CHECK(validate_error("{,}") == ScanError::unexpected_character);
    CHECK(validate_error("{1:2}") == ScanError::unexpected_character);
    CHECK(validate_error("{'a':1}") == ScanError::unexpected_character);
    CHECK(validate_error(R"({"a" 1})") == ScanError::unexpected_character);
    CHECK(validate_error("tru") == ScanError::invalid_literal);
    CHECK(validate_error("nul") == ScanError::invalid_literal);
    CHECK(validate_error("True") == ScanError::unexpected_character);
    CHECK(validate_error("fals") == ScanError::invalid_literal);
    CHECK(validate_error("truex") == ScanError::trailing_characters);
    CHECK(validate_error("[1] [2]") == ScanError::trailing_characters);
    CHECK(validate_error("{}x") == ScanError::trailing_characters);
    CHECK(validate_error(std::string("{}\0", 3)) == ScanError::trailing_characters);
}

TEST_CASE("scanner: only space, tab, LF and CR are whitespace", "[json_scanner]") {
    CHECK(validate_error("[1,\f2]") == ScanError::unexpected_character);
    CHECK(validate_error("[1,\v2]") == ScanError::unexpected_character);
    CHECK(validate_error("[1,\xC2\xA0" "2]") == ScanError::unexpected_character);  // NBSP
    CHECK(validate_error(std::string("[1,\0" "2]", 5)) == ScanError::unexpected_character);
    CHECK(validate_error("\xEF\xBB\xBF{}") == ScanError::unexpected_character);  // a BOM is not allowed
}

TEST_CASE("scanner: strings reject raw control bytes, bad escapes and bad UTF-8", "[json_scanner]") {
    CHECK(validate_error("\"a\x01" "b\"") == ScanError::control_character);
    CHECK(validate_error("\"tab\there\"") == ScanError::control_character);
    CHECK(validate_error("\"line\nbreak\"") == ScanError::control_character);
    CHECK(validate_error(std::string("\"nul\0\"", 6)) == ScanError::control_character);
    CHECK(validate_error("\"\x1F\"") == ScanError::control_character);
    CHECK(validate_error("\"\x7F\"") == ScanError::none);  // DEL is not a control byte in JSON

    CHECK(validate_error(R"("\x")") == ScanError::invalid_escape);
    CHECK(validate_error(R"("\a")") == ScanError::invalid_escape);
    CHECK(validate_error(R"("\U0041")") == ScanError::invalid_escape);
    CHECK(validate_error(R"("\u12")") == ScanError::invalid_escape);
    CHECK(validate_error(R"("\u12g4")") == ScanError::invalid_escape);
    CHECK(validate_error(R"("\u12)") == ScanError::unexpected_end);
    CHECK(validate_error(R"("abc\")") == ScanError::unexpected_end);
    CHECK(validate_error(R"("abc)") == ScanError::unexpected_end);

    CHECK(validate_error("\"\xC0\x80\"") == ScanError::invalid_utf8);
    CHECK(validate_error("\"\xE0\x80\x80\"") == ScanError::invalid_utf8);
    CHECK(validate_error("\"\xED\xA0\x80\"") == ScanError::invalid_utf8);
    CHECK(validate_error("\"\xF4\x90\x80\x80\"") == ScanError::invalid_utf8);
    CHECK(validate_error("\"\xFF\"") == ScanError::invalid_utf8);
    CHECK(validate_error("\"\x80\"") == ScanError::invalid_utf8);
    CHECK(validate_error("\"\xC3\"") == ScanError::invalid_utf8);      // truncated before the quote
    CHECK(validate_error("\"\xE2\x82") == ScanError::invalid_utf8);    // truncated at the end of input
    CHECK(validate_error("[\"ok\",\"\xC3\"]") == ScanError::invalid_utf8);
    // Bytes >= 0x80 outside strings are never valid either.
    CHECK(validate_error("\xC3\xA9") == ScanError::unexpected_character);
}

TEST_CASE("scanner: depth is bounded, and an overlong prefix stops the scan at the limit", "[json_scanner]") {
    CHECK(validate_error(repeat("[", 32) + repeat("]", 32), 32) == ScanError::none);
    CHECK(validate_error(repeat("[", 33) + repeat("]", 33), 32) == ScanError::too_deep);
    CHECK(validate_error("[]", 1) == ScanError::none);
    CHECK(validate_error("[[]]", 1) == ScanError::too_deep);
    CHECK(validate_error("[]", 0) == ScanError::too_deep);
    CHECK(validate_error("1", 0) == ScanError::none);  // scalars have no depth

    // 100,000 brackets: rejected at the 33rd, so the work is bounded by the limit, not the input.
    const std::string brackets = repeat("[", 100000);
    JsonScanner scanner(brackets, 32);
    CHECK_FALSE(scanner.validate());
    CHECK(scanner.error() == ScanError::too_deep);
    CHECK(scanner.error_offset() == 32);
}

TEST_CASE("scanner: deep documents under a generous limit use the spill stack correctly", "[json_scanner]") {
    // 300 levels alternating object and array crosses the 128 inline levels of
    // the container stack; closing each level with the right bracket must succeed.
    std::string open;
    std::string close;
    for (int i = 0; i < 300; ++i) {
        if (i % 2 == 0) {
            open += "{\"k\":";
            close.insert(0, "}");
        } else {
            open += "[1,";
            close.insert(0, "]");
        }
    }
    const std::string good = open + "0" + close;
    CHECK(validate_error(good, 1000) == ScanError::none);
    CHECK(validate_error(good, 300) == ScanError::none);
    CHECK(validate_error(good, 299) == ScanError::too_deep);

    // Swap one closing bracket deep inside the spilled region: the mismatch must be found.
    std::string bad = good;
    const std::size_t pos = open.size() + 1 + 50;  // the 51st closer, i.e. level 250
    bad[pos] = bad[pos] == '}' ? ']' : '}';
    CHECK(validate_error(bad, 1000) == ScanError::unexpected_character);

    // Reusing spilled words after popping: go deep, come back, go deep again.
    const std::string twice = "[" + repeat("[", 200) + repeat("]", 200) + "," + repeat("{\"a\":", 200) + "1" +
                              repeat("}", 200) + "]";
    CHECK(validate_error(twice, 1000) == ScanError::none);
}

TEST_CASE("scanner: walking an object yields decoded keys, exact value spans and kinds", "[json_scanner]") {
    const std::string text =
        " {\"a\" : 1 ,\"b\":\t\"two\" , \"c\":[ 1, {\"x\":[]} ] ,\"\\u0064\":{ \"y\" : null },"
        "\"e\":true,\"f\":false,\"g\":null,\"h\":-0.0E+00,\"\":\"\"} \n";
    const Walk w = walk(text);
    REQUIRE(w.error == ScanError::none);
    REQUIRE(w.members.size() == 9);
    CHECK(w.members[0].key == "a");
    CHECK(w.members[0].value == "1");
    CHECK(w.members[0].kind == JsonKind::number);
    CHECK(w.members[1].key == "b");
    CHECK(w.members[1].value == "\"two\"");
    CHECK(w.members[1].kind == JsonKind::string);
    CHECK(w.members[2].key == "c");
    CHECK(w.members[2].value == "[ 1, {\"x\":[]} ]");
    CHECK(w.members[2].kind == JsonKind::array);
    CHECK(w.members[3].key == "d");  // decoded from \u0064
    CHECK(w.members[3].value == "{ \"y\" : null }");
    CHECK(w.members[3].kind == JsonKind::object);
    CHECK(w.members[4].kind == JsonKind::boolean);
    CHECK(w.members[5].kind == JsonKind::boolean);
    CHECK(w.members[5].value == "false");
    CHECK(w.members[6].kind == JsonKind::null);
    CHECK(w.members[7].value == "-0.0E+00");
    CHECK(w.members[8].key.empty());
    CHECK(w.members[8].value == "\"\"");

    // The spans point into the text, not into copies.
    CHECK(w.members[2].value.data() >= text.data());
    CHECK(w.members[2].value.data() + w.members[2].value.size() <= text.data() + text.size());
}

TEST_CASE("scanner: object walk errors", "[json_scanner]") {
    CHECK(walk("{}").error == ScanError::none);
    CHECK(walk(" { } ").members.empty());
    CHECK(walk("[1]").error == ScanError::not_an_object);
    CHECK(walk("\"s\"").error == ScanError::not_an_object);
    CHECK(walk("12").error == ScanError::not_an_object);
    CHECK(walk("null").error == ScanError::not_an_object);
    CHECK(walk("").error == ScanError::unexpected_end);
    CHECK(walk("   ").error == ScanError::unexpected_end);
    CHECK(walk("{}", 0).error == ScanError::too_deep);
    CHECK(walk(R"({"a":1)").error == ScanError::unexpected_end);
    CHECK(walk(R"({"a":1,)").error == ScanError::unexpected_end);
    CHECK(walk(R"({"a":1,})").error == ScanError::unexpected_character);
    CHECK(walk(R"({"a":1 "b":2})").error == ScanError::unexpected_character);
    CHECK(walk(R"({"a" 1})").error == ScanError::unexpected_character);
    CHECK(walk(R"({a:1})").error == ScanError::unexpected_character);
    CHECK(walk(R"({"\ud800":1})").error == ScanError::unpaired_surrogate);

    // Members before the garbage are returned, but the walk still ends in an error.
    const Walk trailing = walk(R"({"a":1} x)");
    CHECK(trailing.members.size() == 1);
    CHECK(trailing.error == ScanError::trailing_characters);
    CHECK(trailing.error_offset == 8);
    CHECK(walk(R"({"a":1}{})").error == ScanError::trailing_characters);
}

TEST_CASE("scanner: the top-level object counts as depth 1", "[json_scanner]") {
    CHECK(walk(R"({"a":1})", 1).error == ScanError::none);
    CHECK(walk(R"({"a":[]})", 1).error == ScanError::too_deep);
    CHECK(walk(R"({"a":[]})", 2).error == ScanError::none);
    CHECK(walk(R"({"a":[[]]})", 2).error == ScanError::too_deep);

    // 500,000 repetitions of {"a": are rejected at the 33rd brace, 160 bytes in.
    const Walk deep = walk(repeat("{\"a\":", 500000), 32);
    CHECK(deep.error == ScanError::too_deep);
    CHECK(deep.error_offset == 32 * 5);
}

TEST_CASE("scanner: describe() gives a message for every error", "[json_scanner]") {
    for (int e = static_cast<int>(ScanError::none); e <= static_cast<int>(ScanError::trailing_characters); ++e) {
        CHECK_FALSE(wshub::detail::describe(static_cast<ScanError>(e)).empty());
    }
}
