// wshub/detail/redis_url.hpp: parsing the Redis URL users give (--redis).
//
//   redis://[[user]:password@]host[:port][/db]
//   redis://127.0.0.1            (port 6379, db 0)
//   unix:///run/redis.sock[?db=N&password=P]
//
// The user part must be empty or "default" (hiredis 0.14 has only the
// one-argument AUTH); `rediss://` (TLS) is refused with a clear message rather
// than silently connecting in clear text. Percent-escapes are decoded in the
// password.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wshub::detail {

struct RedisUrl {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string unix_path;  // non-empty: a Unix socket instead of host:port
    std::string password;
    int db = 0;
};

struct RedisUrlResult {
    std::optional<RedisUrl> url;
    std::string error;  // when !url: what is wrong, without echoing the password
};

namespace redis_url_detail {

inline bool parse_int(std::string_view text, int min, int max, int& out) {
    if (text.empty() || text.size() > 9) return false;
    int value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + (c - '0');
    }
    if (value < min || value > max) return false;
    out = value;
    return true;
}

inline std::optional<std::string> percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out.push_back(text[i]);
            continue;
        }
        if (i + 2 >= text.size()) return std::nullopt;  // a '%' needs two hex digits after it
        int value = 0;
        for (int k = 1; k <= 2; ++k) {
            const char c = text[i + static_cast<std::size_t>(k)];
            value <<= 4;
            if (c >= '0' && c <= '9') value |= c - '0';
            else if (c >= 'a' && c <= 'f') value |= c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') value |= c - 'A' + 10;
            else return std::nullopt;
        }
        out.push_back(static_cast<char>(value));
        i += 2;
    }
    return out;
}

inline RedisUrlResult fail(std::string message) { return {std::nullopt, std::move(message)}; }

}  // namespace redis_url_detail

inline RedisUrlResult parse_redis_url(std::string_view text) {
    using namespace redis_url_detail;
    RedisUrl url;
    if (text.rfind("rediss://", 0) == 0) return fail("rediss:// (TLS) is not supported; use a TLS tunnel or redis://");
    if (text.rfind("unix://", 0) == 0) {
        std::string_view rest = text.substr(7);
        const auto question = rest.find('?');
        url.unix_path = std::string(rest.substr(0, question));
        if (url.unix_path.empty() || url.unix_path[0] != '/') return fail("unix:// needs an absolute socket path");
        if (question != std::string_view::npos) {
            std::string_view query = rest.substr(question + 1);
            while (!query.empty()) {
                const auto amp = query.find('&');
                const auto pair = query.substr(0, amp);
                const auto eq = pair.find('=');
                const auto key = pair.substr(0, eq);
                const auto value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
                if (key == "db") {
                    if (!parse_int(value, 0, 1'000'000, url.db)) return fail("db must be a non-negative integer");
                } else if (key == "password") {
                    auto decoded = percent_decode(value);
                    if (!decoded) return fail("bad percent-escape in the password");
                    url.password = std::move(*decoded);
                } else {
                    return fail("unknown parameter in a unix:// URL (db and password are known)");
                }
                if (amp == std::string_view::npos) break;
                query.remove_prefix(amp + 1);
            }
        }
        return {url, {}};
    }
    if (text.rfind("redis://", 0) != 0) return fail("a Redis URL starts with redis:// or unix://");
    std::string_view rest = text.substr(8);
    const auto at = rest.rfind('@');
    if (at != std::string_view::npos) {
        const auto userinfo = rest.substr(0, at);
        rest.remove_prefix(at + 1);
        const auto colon = userinfo.find(':');
        const auto user = userinfo.substr(0, colon);
        if (!user.empty() && user != "default") {
            return fail("only the default user is supported (hiredis 0.14 sends AUTH <password>)");
        }
        if (colon != std::string_view::npos) {
            auto decoded = percent_decode(userinfo.substr(colon + 1));
            if (!decoded) return fail("bad percent-escape in the password");
            url.password = std::move(*decoded);
        }
    }
    const auto slash = rest.find('/');
    std::string_view hostport = rest.substr(0, slash);
    if (slash != std::string_view::npos) {
        const auto db = rest.substr(slash + 1);
        if (!db.empty() && !parse_int(db, 0, 1'000'000, url.db)) return fail("db must be a non-negative integer");
    }
    if (!hostport.empty() && hostport.front() == '[') {  // [IPv6]:port
        const auto close = hostport.find(']');
        if (close == std::string_view::npos) return fail("unclosed [ in the host");
        url.host = std::string(hostport.substr(1, close - 1));
        hostport.remove_prefix(close + 1);
        if (!hostport.empty()) {
            if (hostport.front() != ':' || !parse_int(hostport.substr(1), 1, 65535, url.port)) {
                return fail("port must be 1..65535");
            }
        }
    } else {
        const auto colon = hostport.rfind(':');
        if (colon != std::string_view::npos) {
            if (!parse_int(hostport.substr(colon + 1), 1, 65535, url.port)) return fail("port must be 1..65535");
            hostport = hostport.substr(0, colon);
        }
        if (!hostport.empty()) url.host = std::string(hostport);
    }
    if (url.host.empty()) return fail("empty host");
    return {url, {}};
}

}  // namespace wshub::detail
