// bench/loadgen/histogram.hpp: a latency histogram with bounded relative error.
//
// Log-linear buckets (as HdrHistogram does): values below 2^sub_bits land in
// exact buckets, above that each power of two is split into 2^sub_bits
// buckets, so a recorded value is off by at most 1/2^sub_bits (0.8 % with 7
// bits). Fixed memory, no allocation on record(), mergeable across threads.
//
// Thread safety: none; one per thread, merged at the end.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>

namespace loadgen {

class Histogram {
public:
    static constexpr int sub_bits = 7;
    static constexpr int sub_buckets = 1 << sub_bits;
    static constexpr int max_exponent = 40;  // values up to 2^47 ns (about 39 hours)

    void record(std::uint64_t value) {
        ++counts_[index_of(value)];
        ++total_;
        max_ = std::max(max_, value);
    }

    void merge(const Histogram& other) {
        for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
        total_ += other.total_;
        max_ = std::max(max_, other.max_);
    }

    std::uint64_t count() const { return total_; }
    std::uint64_t max() const { return max_; }

    // The value at quantile q (0..1): the upper bound of the bucket holding it.
    std::uint64_t quantile(double q) const {
        if (total_ == 0) return 0;
        const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) return std::min(upper_of(i), max_);
        }
        return max_;
    }

private:
    static std::size_t index_of(std::uint64_t v) {
        if (v < sub_buckets) return static_cast<std::size_t>(v);
        const int msb = 63 - __builtin_clzll(v);  // >= sub_bits
        const int exponent = std::min(msb - sub_bits + 1, max_exponent);
        const std::uint64_t mantissa = exponent == max_exponent && msb - sub_bits + 1 > max_exponent
                                           ? sub_buckets - 1
                                           : (v >> (exponent - 1)) - sub_buckets;  // 0 .. sub_buckets-1
        return static_cast<std::size_t>(exponent) * sub_buckets + static_cast<std::size_t>(mantissa);
    }

    static std::uint64_t upper_of(std::size_t index) {
        const auto exponent = index / sub_buckets;
        const auto mantissa = index % sub_buckets;
        if (exponent == 0) return mantissa;
        return ((sub_buckets + mantissa + 1) << (exponent - 1)) - 1;
    }

    std::array<std::uint64_t, (max_exponent + 1) * sub_buckets> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
};

}  // namespace loadgen
