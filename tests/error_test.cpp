// Tests of wshub/error.hpp: the error category, make_error_code and the wire codes.
#include <wshub/error.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <system_error>

TEST_CASE("wshub errors convert to std::error_code in the wshub category", "[error]") {
    const std::error_code ec = wshub::make_error_code(wshub::error::invalid_channel);
    CHECK(ec.value() == static_cast<int>(wshub::error::invalid_channel));
    CHECK(&ec.category() == &wshub::error_category());
    CHECK(std::string(ec.category().name()) == "wshub");
    CHECK(ec.message() == "invalid channel name");
    CHECK(ec);  // no wshub error is "success"

    // is_error_code_enum makes the enum convert implicitly and compare directly.
    const std::error_code implicit = wshub::error::timed_out;
    CHECK(implicit == wshub::error::timed_out);
    CHECK(implicit != wshub::error::unavailable);
    CHECK(implicit != std::make_error_code(std::errc::timed_out));
}

TEST_CASE("every wshub error has its own message", "[error]") {
    CHECK(wshub::make_error_code(wshub::error::bad_request).message() == "bad request");
    CHECK(wshub::make_error_code(wshub::error::shutting_down).message() == "hub is shutting down");
    CHECK(wshub::error_category().message(9999) == "unknown wshub error");
}

TEST_CASE("protocol_code maps errors to the wire's code strings", "[error]") {
    static_assert(wshub::protocol_code(wshub::error::invalid_channel) == "invalid_channel");
    CHECK(wshub::protocol_code(wshub::error::bad_request) == "bad_request");
    CHECK(wshub::protocol_code(wshub::error::too_many_subscriptions) == "too_many_subscriptions");
    CHECK(wshub::protocol_code(wshub::error::internal) == "internal");

    // Server-side conditions never reach the wire under their own name.
    CHECK(wshub::protocol_code(wshub::error::shutting_down) == "unavailable");
    CHECK(wshub::protocol_code(wshub::error::connection_closed) == "internal");
    CHECK(wshub::protocol_code(wshub::error::timed_out) == "unavailable");
}
