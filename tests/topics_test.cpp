// detail/topics.hpp: channel <-> topic names and public connection ids.
#include <catch2/catch.hpp>

#include "wshub/detail/topics.hpp"

using namespace wshub::detail;

TEST_CASE("a channel maps into the prefix's namespace and back", "[topics]") {
    CHECK(channel_topic("wshub:", "room") == "wshub:ch:room");
    CHECK(channel_of_topic("wshub:", "wshub:ch:room") == std::optional<std::string_view>("room"));
    CHECK_FALSE(channel_of_topic("wshub:", "other:ch:room"));
    CHECK_FALSE(channel_of_topic("wshub:", "wshub:inbox:x"));
    CHECK_FALSE(channel_of_topic("wshub:", "wshub:c"));
}

TEST_CASE("public connection ids carry the instance and round-trip", "[topics]") {
    const auto id = public_connection_id("node-1", 42);
    CHECK(id == "node-1-42");
    const auto parsed = parse_connection_id(id);
    REQUIRE(parsed);
    CHECK(parsed->instance == "node-1");
    CHECK(parsed->number == 42);
    CHECK(parse_connection_id("node-18446744073709551615"));
    for (const char* bad : {"", "-1", "node-", "node", "node-1a", "node-99999999999999999999", "node-18446744073709551616"}) {
        INFO(bad);
        CHECK_FALSE(parse_connection_id(bad));
    }
}
