// tests/support/run_until.hpp: drive an io_context until a condition holds.
//
// Tests wait for events, never for a fixed time: this runs the io_context in
// short slices until `done()` is true or a generous deadline passes (then the
// caller's REQUIRE fails with a clear message instead of hanging).
#pragma once

#include <chrono>
#include <functional>

#include <asio/io_context.hpp>

namespace wshub::test {

inline bool run_until(asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= until) return false;
        io.restart();
        io.run_for(std::chrono::milliseconds(5));
    }
    return true;
}

// Runs every handler that is ready now (and those they post), without waiting for timers.
inline void settle(asio::io_context& io) {
    io.restart();
    while (io.poll() > 0) io.restart();
}

}  // namespace wshub::test
