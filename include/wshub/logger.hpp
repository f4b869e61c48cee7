// wshub/logger.hpp: the logger policy and two implementations.
//
// A logger is a type with:
//
//   bool enabled(LogLevel level) const;        // cheap; the hub formats nothing when false
//   void log(LogLevel level, std::string_view line);
//
// The hub logs one line per event worth an operator's attention (lazy
// subscribe/unsubscribe, evictions, shutdown steps) and never per frame. It
// never logs claims or tokens.
//
// Thread safety: NullLogger is stateless. StderrLogger writes each line with
// one fwrite, which is atomic with respect to other lines, so it may be shared
// by several threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>

namespace wshub {

enum class LogLevel : std::uint8_t { debug, info, warn, error, off };

constexpr std::string_view to_string(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warn: return "warn";
        case LogLevel::error: return "error";
        case LogLevel::off: return "off";
    }
    return "?";
}

// Default: logs nothing.
struct NullLogger {
    constexpr bool enabled(LogLevel) const noexcept { return false; }
    void log(LogLevel, std::string_view) const noexcept {}
};

// One line per event on stderr: "2026-12-03T18:21:54Z info  <line>".
class StderrLogger {
public:
    explicit StderrLogger(LogLevel min_level = LogLevel::info) noexcept : min_level_(min_level) {}

    bool enabled(LogLevel level) const noexcept { return level >= min_level_ && level != LogLevel::off; }

    void log(LogLevel level, std::string_view line) const {
        if (!enabled(level)) return;
        const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
        std::tm utc{};
        gmtime_r(&now, &utc);
        char stamp[32];
        std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
        std::string out;
        out.reserve(line.size() + 40);
        out.append(stamp).append(" ").append(to_string(level));
        out.append(level == LogLevel::info || level == LogLevel::warn ? "  " : " ");
        out.append(line).push_back('\n');
        std::fwrite(out.data(), 1, out.size(), stderr);
    }

private:
    LogLevel min_level_;
};

}  // namespace wshub
