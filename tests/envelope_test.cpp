// detail/envelope.hpp: the payload one instance publishes to the others.
#include <catch2/catch.hpp>

#include "wshub/detail/envelope.hpp"

using namespace wshub::detail;

TEST_CASE("an envelope carries the origin and the data byte for byte", "[envelope]") {
    const std::string data = "{\"a\" : [1e400, \"\\n\"]}\n trailing newline inside data\n";
    const auto payload = encode_envelope("node-7", data);
    const auto decoded = decode_envelope(payload);
    REQUIRE(decoded);
    CHECK(decoded->origin == "node-7");
    CHECK(decoded->data == data);
}

TEST_CASE("anything else is not an envelope", "[envelope]") {
    for (const char* bad : {"", "w1", "w1 ", "w1 node", "w1 \n1", "w1 node\n", "w2 node\n1", "{\"x\":1}"}) {
        INFO(bad);
        CHECK_FALSE(decode_envelope(bad));
    }
}
