// detail::is_valid_channel_name and is_valid_instance_id: the naming rules.
#include <catch2/catch.hpp>

#include <string>

#include "wshub/detail/channel_name.hpp"

using wshub::detail::is_valid_channel_name;
using wshub::detail::is_valid_instance_id;

TEST_CASE("channel names: every allowed byte, 1 to 128 bytes", "[channel_name]") {
    CHECK(is_valid_channel_name("a"));
    CHECK(is_valid_channel_name("ABCXYZabcxyz0189_-.:@/="));
    CHECK(is_valid_channel_name(std::string(128, 'x')));
}

TEST_CASE("channel names: everything else is refused", "[channel_name]") {
    CHECK_FALSE(is_valid_channel_name(""));
    CHECK_FALSE(is_valid_channel_name(std::string(129, 'x')));
    for (const char* bad : {"a*", "a?", "a[", "a]", "a b", "a\r", "a\n", "a\t", "a\\", "a\"", "a'", "a{", "a,",
                            "a#", "a%", "a|", "caf\xc3\xa9"}) {
        INFO(bad);
        CHECK_FALSE(is_valid_channel_name(bad));
    }
    CHECK_FALSE(is_valid_channel_name(std::string("a\0b", 3)));
    for (int c = 0; c < 256; ++c) {
        const char ch = static_cast<char>(c);
        const bool allowed = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                             std::string("_-.:@/=").find(ch) != std::string::npos;
        INFO(c);
        CHECK(is_valid_channel_name(std::string(1, ch)) == allowed);
    }
}

TEST_CASE("instance ids", "[channel_name]") {
    CHECK(is_valid_instance_id("node-1.eu_west"));
    CHECK(is_valid_instance_id(std::string(64, 'i')));
    CHECK_FALSE(is_valid_instance_id(""));
    CHECK_FALSE(is_valid_instance_id(std::string(65, 'i')));
    CHECK_FALSE(is_valid_instance_id("a:b"));
    CHECK_FALSE(is_valid_instance_id("a b"));
    CHECK_FALSE(is_valid_instance_id("a\nb"));
}
