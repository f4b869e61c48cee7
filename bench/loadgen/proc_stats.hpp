// bench/loadgen/proc_stats.hpp: CPU seconds and RSS of a process, from /proc.
//
// The load generator reads the server's figures (by pid) and its own, at the
// start and end of the measured window, so a result says what the server
// spent for what it delivered.
//
// Thread safety: pure functions over /proc.
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <unistd.h>

namespace loadgen {

struct ProcSample {
    double cpu_seconds = 0;     // user + system
    std::uint64_t rss_bytes = 0;
};

// nullopt when the process does not exist (or /proc is not there).
inline std::optional<ProcSample> sample_process(long pid) {
    const std::string base = pid > 0 ? "/proc/" + std::to_string(pid) : std::string("/proc/self");
    std::ifstream stat(base + "/stat");
    std::string line;
    if (!stat || !std::getline(stat, line)) return std::nullopt;
    // Field 2 (comm) may hold spaces; the fields after its closing parenthesis are plain.
    const auto close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    ProcSample sample;
    sample.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    std::ifstream status(base + "/status");
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            sample.rss_bytes = std::stoull(line.substr(6)) * 1024;  // "VmRSS:  1234 kB"
            break;
        }
    }
    return sample;
}

}  // namespace loadgen
