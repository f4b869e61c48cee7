// detail::parse_redis_url: the --redis URL forms, and the errors.
#include <catch2/catch.hpp>

#include "wshub/detail/redis_url.hpp"

using wshub::detail::parse_redis_url;

TEST_CASE("redis:// URLs", "[redis_url]") {
    auto r = parse_redis_url("redis://127.0.0.1");
    REQUIRE(r.url);
    CHECK(r.url->host == "127.0.0.1");
    CHECK(r.url->port == 6379);
    CHECK(r.url->db == 0);
    CHECK(r.url->password.empty());

    r = parse_redis_url("redis://:s%40cret@redis.internal:6380/3");
    REQUIRE(r.url);
    CHECK(r.url->host == "redis.internal");
    CHECK(r.url->port == 6380);
    CHECK(r.url->db == 3);
    CHECK(r.url->password == "s@cret");

    r = parse_redis_url("redis://default:pw@h");
    REQUIRE(r.url);
    CHECK(r.url->password == "pw");

    r = parse_redis_url("redis://");  // every default
    REQUIRE(r.url);
    CHECK(r.url->host == "127.0.0.1");

    r = parse_redis_url("redis://[::1]:7000/");
    REQUIRE(r.url);
    CHECK(r.url->host == "::1");
    CHECK(r.url->port == 7000);
}

TEST_CASE("unix:// URLs", "[redis_url]") {
    auto r = parse_redis_url("unix:///run/redis/redis.sock?db=2&password=x%20y");
    REQUIRE(r.url);
    CHECK(r.url->unix_path == "/run/redis/redis.sock");
    CHECK(r.url->db == 2);
    CHECK(r.url->password == "x y");
}

TEST_CASE("bad URLs get a clear error that never shows the password", "[redis_url]") {
    for (const char* bad : {"", "127.0.0.1:6379", "http://x", "rediss://h", "redis://h:0", "redis://h:65536",
                            "redis://h:port", "redis://h/db", "redis://alice:pw@h", "redis://:%zz@h", "redis://:%4@h",
                            "unix://relative.sock", "unix:///s?nope=1", "redis://[::1"}) {
        INFO(bad);
        const auto r = parse_redis_url(bad);
        CHECK_FALSE(r.url);
        CHECK_FALSE(r.error.empty());
    }
    const auto r = parse_redis_url("redis://:hunter2@h:99999");
    REQUIRE_FALSE(r.url);
    CHECK(r.error.find("hunter2") == std::string::npos);
}
