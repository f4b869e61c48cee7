// chat_server: a chat over WebSockets, built from wshub's headers.
//
// Try it:
//   examples/chat/run.sh                 (installs, builds, starts on :8080)
//   open http://127.0.0.1:8080/ in two browser tabs, pick a room, chat.
//
// What it shows, each logged on one line at info:
//   - lazy PubSub subscriptions: the first subscriber of a room subscribes the
//     instance, the last one to leave unsubscribes it;
//   - slow-client eviction: a client that stops reading is closed with 4008
//     (or, with --slow-policy drop, loses messages and later gets `gap`);
//   - graceful shutdown: SIGINT/SIGTERM stop accepting, /healthz turns 503,
//     clients are closed with 1001 in batches, the process exits 0; a second
//     signal forces the exit.
//
// Who is who: the page connects to /ws?name=<name>, and the authentication
// hook below takes that name as the connection's user id. That is NOT
// authentication (anyone may claim any name); a real server checks a token
// there. With the user id, `/msg <name> text` on the page reaches every
// connection of that name, and each room (channel "room:<room>", presence on)
// lists its members with join/leave events. With --redis, a ConnectionRegistry
// makes both work across instances and cleans up after a crashed instance.
//
// Threads: the io_context runs on --threads threads (default 1); the hub
// keeps its state on one strand either way. For more cores, run more
// processes on other ports (or one port with SO_REUSEPORT) and --redis: Redis
// ties them together exactly as it ties machines together.
//
// Routes on one port: /ws (WebSocket, docs/protocol.md), / and the page's
// files, /healthz, /metrics (Prometheus text).
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/strand.hpp>

#include <CLI/CLI.hpp>

#include <csignal>
#include <memory>
#include <optional>
#include <string_view>
#include <type_traits>

#include <unistd.h>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "web_assets.hpp"
#include "wshub/connection_registry.hpp"
#include "wshub/hub.hpp"
#include "wshub/local_pubsub.hpp"
#include "wshub/logger.hpp"
#include "wshub/prometheus.hpp"
#include "wshub/redis_pubsub.hpp"
#include "wshub/registry_concept.hpp"
#include "wshub/websocketpp_transport.hpp"

namespace {

struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    std::string redis;
    std::string instance;
    std::string prefix = "wshub:";
    std::size_t max_message_bytes = 64 * 1024;
    std::size_t max_queue_bytes = 1024 * 1024;
    std::size_t max_queue_messages = 4096;
    std::string slow_policy = "close";
    std::vector<std::string> allowed_origins;
    long ping_interval_ms = 25'000;
    long pong_timeout_ms = 10'000;
    long shutdown_timeout_ms = 10'000;
    std::string log_level = "info";
    int threads = 1;
    double publish_rate = 100;
    double publish_burst = 200;
    long heartbeat_interval_ms = 10'000;
    long registry_ttl_ms = 30'000;
    long janitor_interval_ms = 10'000;
    bool tcp_no_delay = true;
    bool inline_writes = false;
};

// The channels of the page's rooms; presence is on for them.
constexpr std::string_view room_prefix = "room:";

// Over Redis the hub gets a ConnectionRegistry; on the in-process PubSub
// everything is on this instance and NoRegistry answers from the hub's state.
template <class PubSub>
using RegistryFor =
    std::conditional_t<std::is_same_v<PubSub, wshub::RedisPubSub>, wshub::ConnectionRegistry, wshub::NoRegistry>;

template <class SlowClient, class PubSub>
struct ChatPolicies : wshub::DefaultPolicies {
    using slow_client = SlowClient;
    using logger = wshub::StderrLogger;
    using registry = RegistryFor<PubSub>;
};

wshub::LogLevel parse_level(const std::string& name) {
    if (name == "debug") return wshub::LogLevel::debug;
    if (name == "warn") return wshub::LogLevel::warn;
    if (name == "error") return wshub::LogLevel::error;
    if (name == "off") return wshub::LogLevel::off;
    return wshub::LogLevel::info;
}

std::string content_type_of(std::string_view name) {
    const auto ends_with = [&](std::string_view ext) {
        return name.size() >= ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0;
    };
    if (ends_with(".html")) return "text/html; charset=utf-8";
    if (ends_with(".js")) return "text/javascript; charset=utf-8";
    if (ends_with(".css")) return "text/css; charset=utf-8";
    if (ends_with(".svg")) return "image/svg+xml";
    if (ends_with(".png")) return "image/png";
    return "application/octet-stream";
}

// "%41b+c" -> "Ab c"; nullopt for a broken escape.
std::optional<std::string> percent_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '+') {
            out.push_back(' ');
        } else if (in[i] != '%') {
            out.push_back(in[i]);
        } else {
            if (i + 2 >= in.size()) return std::nullopt;  // "%4" at the end
            const int high = hex(in[i + 1]);
            const int low = hex(in[i + 2]);
            if (high < 0 || low < 0) return std::nullopt;
            out.push_back(static_cast<char>(high * 16 + low));
            i += 2;
        }
    }
    return out;
}

// The page's display name, from /ws?name=...: 1..128 bytes (the page allows
// 32 characters), no control bytes, no surrounding spaces. Anything else
// connects anonymously (no user id).
std::string chat_name_of(const wshub::HttpRequest& request) {
    const auto decoded = percent_decode(request.query_param("name"));
    if (!decoded || decoded->empty() || decoded->size() > 128) return {};
    for (unsigned char c : *decoded) {
        if (c < 0x20 || c == 0x7f) return {};
    }
    if (decoded->front() == ' ' || decoded->back() == ' ') return {};
    return *decoded;
}

// Registry counters and the deployment's connection counts for /metrics
// (nothing without a ConnectionRegistry).
template <class Registry>
std::string registry_metrics(const Registry& registry, const std::string& instance) {
    if constexpr (std::is_same_v<Registry, wshub::ConnectionRegistry>) {
        const auto s = registry.stats();
        const auto cluster = registry.cluster_stats();
        const std::string label = "{instance=\"" + instance + "\"}";
        std::string out;
        const auto metric = [&](const char* name, const char* type, const char* help, std::uint64_t value) {
            out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + label +
                   " " + std::to_string(value) + "\n";
        };
        metric("wshub_registry_up", "gauge", "1 while the registry's Redis link is up.", s.up ? 1 : 0);
        metric("wshub_registry_heartbeats_total", "counter", "Heartbeat rounds written.", s.heartbeats);
        metric("wshub_registry_janitor_runs_total", "counter", "Janitor rounds that held the lock.", s.janitor_runs);
        metric("wshub_registry_instances_cleaned_total", "counter", "Dead instances this janitor removed.",
               s.instances_cleaned);
        metric("wshub_registry_direct_sent_total", "counter", "Direct messages published to another instance's inbox.",
               s.direct_sent);
        if (cluster.known) {
            metric("wshub_cluster_connections", "gauge", "Connections on every live instance, as the heartbeats show.",
                   cluster.connections);
            metric("wshub_cluster_instances", "gauge", "Live instances, as the heartbeats show.",
                   cluster.instances.size());
            out += "# HELP wshub_cluster_instance_connections Connections of each live instance.\n"
                   "# TYPE wshub_cluster_instance_connections gauge\n";
            for (const auto& [peer, count] : cluster.instances) {
                out += "wshub_cluster_instance_connections{instance=\"" + instance + "\",peer=\"" + peer + "\"} " +
                       std::to_string(count) + "\n";
            }
        }
        return out;
    } else {
        (void)registry;
        (void)instance;
        return {};
    }
}

// Redis-specific counters for /metrics (nothing for the in-process PubSub).
template <class PubSub>
std::string pubsub_metrics(const PubSub& pubsub, const std::string& instance) {
    if constexpr (std::is_same_v<PubSub, wshub::RedisPubSub>) {
        const auto s = pubsub.stats();
        const std::string label = "{instance=\"" + instance + "\"}";
        std::string out;
        const auto metric = [&](const char* name, const char* type, const char* help, std::uint64_t value) {
            out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + label +
                   " " + std::to_string(value) + "\n";
        };
        metric("wshub_redis_subscribe_commands_total", "counter", "SUBSCRIBE commands sent.", s.subscribe_commands);
        metric("wshub_redis_unsubscribe_commands_total", "counter", "UNSUBSCRIBE commands sent.", s.unsubscribe_commands);
        metric("wshub_redis_reconnects_total", "counter", "Reconnects to Redis after a loss.", s.reconnects);
        metric("wshub_redis_health_failures_total", "counter", "Times the health probe declared Redis down.",
               s.health_failures);
        metric("wshub_redis_channels", "gauge", "Channels subscribed on Redis.", s.channels);
        return out;
    } else {
        (void)pubsub;
        (void)instance;
        return {};
    }
}

template <class Hub, class PubSub, class Registry>
wshub::HttpResponse route(const wshub::HttpRequest& request, const Hub& hub, const PubSub& pubsub,
                          const Registry& registry, const wshub::WebsocketppTransport& transport) {
    wshub::HttpResponse response;
    if (request.method != "GET" && request.method != "HEAD") {
        response.status = 405;
        response.body = "method not allowed\n";
        return response;
    }
    if (request.path == "/healthz") {
        const bool draining = hub.draining();
        response.status = draining ? 503 : 200;
        response.body = draining ? "draining\n" : "ok\n";
        return response;
    }
    if (request.path == "/metrics") {
        response.status = 200;
        response.content_type = "text/plain; version=0.0.4; charset=utf-8";
        response.body = wshub::format_prometheus(hub.stats(), hub.instance_id());
        response.body += "# HELP wshub_transport_connections WebSocket connections the transport holds.\n"
                         "# TYPE wshub_transport_connections gauge\n"
                         "wshub_transport_connections{instance=\"" + hub.instance_id() + "\"} " +
                         std::to_string(transport.connection_count()) + "\n";
        response.body += pubsub_metrics(pubsub, hub.instance_id());
        response.body += registry_metrics(registry, hub.instance_id());
        return response;
    }
    const std::string_view name = request.path == "/" ? std::string_view("index.html")
                                                       : std::string_view(request.path).substr(1);
    for (const auto& asset : chat::web_assets()) {
        if (asset.name == name) {
            response.status = 200;
            response.content_type = content_type_of(asset.name);
            response.body = std::string(asset.content);
            response.headers.emplace_back("Cache-Control", "no-cache");
            return response;
        }
    }
    return response;  // 404
}

// The in-process PubSub, or Redis when --redis is given.
template <class PubSub>
PubSub make_pubsub(const asio::any_io_executor& strand, const Options& options, const wshub::StderrLogger& logger) {
    if constexpr (std::is_same_v<PubSub, wshub::RedisPubSub>) {
        wshub::RedisPubSubConfig config;
        config.url = options.redis;
        config.health_channel = options.prefix + "health:" + (options.instance.empty() ? "chat" : options.instance) +
                                ":" + std::to_string(::getpid());
        return wshub::RedisPubSub(strand, config,
                                  [logger](wshub::LogLevel l, std::string_view line) { logger.log(l, line); });
    } else {
        (void)options;
        (void)logger;
        return wshub::LocalPubSub(strand);
    }
}

template <class PubSub>
void close_pubsub(PubSub& pubsub) {
    if constexpr (std::is_same_v<PubSub, wshub::RedisPubSub>) pubsub.close();
}

// A ConnectionRegistry on the same Redis as the PubSub, or NoRegistry.
template <class Registry>
std::unique_ptr<Registry> make_registry(const asio::any_io_executor& strand, const Options& options,
                                        const wshub::StderrLogger& logger) {
    if constexpr (std::is_same_v<Registry, wshub::ConnectionRegistry>) {
        wshub::ConnectionRegistryConfig config;
        config.url = options.redis;
        config.heartbeat_interval = std::chrono::milliseconds(options.heartbeat_interval_ms);
        config.ttl = std::chrono::milliseconds(options.registry_ttl_ms);
        config.janitor_interval = std::chrono::milliseconds(options.janitor_interval_ms);
        config.address = options.host + ":" + std::to_string(options.port);
        return std::make_unique<Registry>(strand, config,
                                          [logger](wshub::LogLevel l, std::string_view line) { logger.log(l, line); });
    } else {
        (void)strand;
        (void)options;
        (void)logger;
        return std::make_unique<Registry>();
    }
}

template <class SlowClient, class PubSub>
int serve(const Options& options) {
    using Policies = ChatPolicies<SlowClient, PubSub>;
    using Registry = typename Policies::registry;
    const wshub::LogLevel level = parse_level(options.log_level);
    const wshub::StderrLogger logger(level);

    wshub::WebsocketppTransportConfig transport_config;
    transport_config.host = options.host;
    transport_config.port = options.port;
    transport_config.max_message_bytes = options.max_message_bytes;
    transport_config.allowed_origins = options.allowed_origins;
    transport_config.ping_interval = std::chrono::milliseconds(options.ping_interval_ms);
    transport_config.pong_timeout = std::chrono::milliseconds(options.pong_timeout_ms);
    transport_config.tcp_no_delay = options.tcp_no_delay;
    transport_config.inline_writes = options.inline_writes;

    wshub::HubConfig hub_config;
    hub_config.instance_id = options.instance;
    hub_config.prefix = options.prefix;
    hub_config.max_message_bytes = options.max_message_bytes;
    hub_config.max_queue_bytes = options.max_queue_bytes;
    hub_config.max_queue_messages = options.max_queue_messages;
    hub_config.shutdown_timeout = std::chrono::milliseconds(options.shutdown_timeout_ms);
    hub_config.publish_rate_per_second = options.publish_rate;
    hub_config.publish_burst = options.publish_burst;
    hub_config.presence_prefixes = {std::string(room_prefix)};

    asio::io_context io;
    wshub::WebsocketppTransport transport(io, transport_config);
    transport.set_log_sink([logger](wshub::LogLevel l, std::string_view line) { logger.log(l, line); });
    transport.set_log_level(level);
    transport.set_auth_hook([](const wshub::HttpRequest& request) {
        wshub::ConnectionInfo info;
        info.user_id = chat_name_of(request);
        return wshub::AuthDecision::accepted(std::move(info));
    });
    // The hub and its PubSub share one strand, so --threads > 1 is safe for both.
    const asio::any_io_executor strand = asio::make_strand(io);
    PubSub pubsub = make_pubsub<PubSub>(strand, options, logger);
    const std::unique_ptr<Registry> registry = make_registry<Registry>(strand, options, logger);
    wshub::Hub<wshub::WebsocketppTransport, PubSub, Policies> hub(strand, transport, pubsub, *registry, hub_config, {},
                                                                  logger);
    transport.set_http_handler(
        [&](const wshub::HttpRequest& request) { return route(request, hub, pubsub, *registry, transport); });

    if (const auto ec = transport.listen()) {
        logger.log(wshub::LogLevel::error, "cannot listen on " + options.host + ":" +
                                               std::to_string(options.port) + ": " + ec.message());
        return 1;
    }
    logger.log(wshub::LogLevel::info, "instance " + hub.instance_id() + " on " +
                                          (options.redis.empty() ? std::string("the in-process PubSub") : "Redis") +
                                          ", slow policy '" + options.slow_policy + "'");
    std::cout << "wshub chat listening on http://" << options.host << ":" << transport.local_port() << "/"
              << std::endl;

    int exit_code = 0;
    int signals_seen = 0;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    std::function<void()> await_signal = [&] {
        signals.async_wait([&](std::error_code ec, int signal) {
            if (ec) return;
            if (++signals_seen == 1) {
                logger.log(wshub::LogLevel::info, "signal " + std::to_string(signal) +
                                                      ": graceful shutdown (send it again to force)");
                hub.shutdown([&] {
                    close_pubsub(pubsub);
                    logger.log(wshub::LogLevel::info, "bye");
                    signals.cancel();
                    io.stop();
                });
                await_signal();
            } else {
                logger.log(wshub::LogLevel::warn, "second signal: exiting without waiting");
                exit_code = 1;
                io.stop();
            }
        });
    };
    await_signal();

    std::vector<std::thread> extra;
    for (int i = 1; i < options.threads; ++i) extra.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : extra) t.join();
    return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    CLI::App app{"wshub chat example: a chat server with a web page at / and WebSockets at /ws"};
    app.add_option("--host", options.host, "Address to listen on")->capture_default_str();
    app.add_option("--port", options.port, "TCP port; 0 picks a free one")->capture_default_str();
    app.add_option("--redis", options.redis, "redis://[:password@]host[:port][/db]; absent: in-process PubSub");
    app.add_option("--instance", options.instance, "Instance id (default: random)");
    app.add_option("--prefix", options.prefix, "Prefix of Redis keys and channels")->capture_default_str();
    app.add_option("--max-message-bytes", options.max_message_bytes, "Largest client frame; larger closes with 1009")
        ->capture_default_str();
    app.add_option("--max-queue-bytes", options.max_queue_bytes, "Outgoing bytes queued per connection before the slow-client policy applies")
        ->capture_default_str();
    app.add_option("--max-queue-messages", options.max_queue_messages, "Outgoing frames queued per connection before the slow-client policy applies")
        ->capture_default_str();
    app.add_option("--slow-policy", options.slow_policy, "close: evict with 4008; drop: drop messages, then send gap")
        ->check(CLI::IsMember({"close", "drop"}))
        ->capture_default_str();
    app.add_option("--allowed-origin", options.allowed_origins, "Allowed Origin of WebSocket handshakes (repeatable; none: any)");
    app.add_option("--tcp-no-delay", options.tcp_no_delay, "TCP_NODELAY on every connection (docs/transport.md)")
        ->capture_default_str();
    app.add_option("--inline-writes", options.inline_writes,
                   "Start writes inside the hub's fan-out (one thread only; docs/transport.md)")
        ->capture_default_str();
    app.add_option("--ping-interval", options.ping_interval_ms, "Milliseconds between pings; 0 disables")->capture_default_str();
    app.add_option("--pong-timeout", options.pong_timeout_ms, "Milliseconds a pong may take before the connection is closed")
        ->capture_default_str();
    app.add_option("--shutdown-timeout", options.shutdown_timeout_ms, "Milliseconds graceful shutdown waits for clients")
        ->capture_default_str();
    app.add_option("--log-level", options.log_level, "debug, info, warn, error or off")
        ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}))
        ->capture_default_str();
    app.add_option("--publish-rate", options.publish_rate, "Publishes per second per connection; 0: unlimited")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_option("--publish-burst", options.publish_burst, "Publishes a connection may burst above the rate")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--threads", options.threads, "Threads running the event loop")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    app.add_option("--heartbeat-interval", options.heartbeat_interval_ms,
                   "With --redis: milliseconds between registry heartbeats (TTL refreshes)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--registry-ttl", options.registry_ttl_ms,
                   "With --redis: milliseconds an instance's registry entries outlive its last heartbeat; "
                   "at least 2 x --heartbeat-interval")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--janitor-interval", options.janitor_interval_ms,
                   "With --redis: milliseconds between cleanups of crashed instances' entries")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    try {
        const bool drop = options.slow_policy == "drop";
        if (!options.redis.empty()) {
            return drop ? serve<wshub::DropAndGap, wshub::RedisPubSub>(options)
                        : serve<wshub::CloseSlowClients, wshub::RedisPubSub>(options);
        }
        return drop ? serve<wshub::DropAndGap, wshub::LocalPubSub>(options)
                    : serve<wshub::CloseSlowClients, wshub::LocalPubSub>(options);
    } catch (const std::exception& e) {
        std::cerr << "chat_server: " << e.what() << '\n';
        return 1;
    }
}
