// wshub/detail/backoff.hpp: reconnect delays, capped exponential with full jitter.
//
// Attempt n waits a random time in [0, min(cap, initial * 2^n)]: the cap keeps
// a long outage from growing the delay without bound, and the jitter keeps a
// fleet of instances from reconnecting to a recovering Redis in lockstep.
//
// Thread safety: none; one per reconnecting client, used on its strand.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace wshub::detail {

class Backoff {
public:
    Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds cap, std::uint64_t seed = std::random_device{}())
        : initial_(std::max<std::chrono::milliseconds>(initial, std::chrono::milliseconds(1))),
          cap_(std::max(cap, initial_)),
          rng_(seed) {}

    // The delay before the next attempt; each call counts one attempt.
    std::chrono::milliseconds next() {
        const auto ceiling = this->ceiling();
        if (attempt_ < 62) ++attempt_;
        std::uniform_int_distribution<std::int64_t> pick(0, ceiling.count());
        return std::chrono::milliseconds(pick(rng_));
    }

    // The upper bound of the next delay.
    std::chrono::milliseconds ceiling() const {
        const std::int64_t cap = cap_.count();
        std::int64_t value = initial_.count();
        for (unsigned i = 0; i < attempt_ && value < cap; ++i) value *= 2;
        return std::chrono::milliseconds(std::min(value, cap));
    }

    // A connection succeeded: start from the initial delay again.
    void reset() noexcept { attempt_ = 0; }
    unsigned attempts() const noexcept { return attempt_; }

private:
    std::chrono::milliseconds initial_;
    std::chrono::milliseconds cap_;
    unsigned attempt_ = 0;
    std::mt19937_64 rng_;
};

}  // namespace wshub::detail
