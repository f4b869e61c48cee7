// wshub_loadgen: the benchmarks' load generator for any server that speaks the
// subscribe/publish/message subset of docs/protocol.md (wshub's chat_server,
// the peers in bench/peers/).
//
//   wshub_loadgen --url ws://127.0.0.1:8080/ws --subscribers 1000 --publishers 4
//                 --rate 2000 --payload 128 --duration 10 --server-pid $(pidof chat_server)
//
// What it does: opens --subscribers connections, each subscribed to one of
// --channels channels ("bench:000000"...), then --publishers connections that
// publish OPEN-LOOP at --rate messages per second in total (the schedule is
// fixed in advance; a late send keeps its intended time, so a stalled server
// shows as latency instead of hiding behind a slower send rate). Every payload
// carries its intended send time (CLOCK_MONOTONIC, this machine), the
// publisher and a per-publisher sequence number; subscribers measure latency
// into a histogram and count losses, duplicates and reordering. With
// --publishers 0 it only connects and holds the connections (idle memory).
//
// Threads: --threads io_contexts, each running its share of the connections
// (with --publisher-thread the publishers get one more, of their own);
// frames are built once per publisher, masked once, and only their changing
// digits are patched (and re-masked) per message: no allocation per message.
// Progress goes to stderr once a second; the result is JSON on stdout (or
// --json-out FILE).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "histogram.hpp"
#include "proc_stats.hpp"
#include "ws_connection.hpp"

namespace {

using clock_type = std::chrono::steady_clock;  // CLOCK_MONOTONIC on Linux

std::uint64_t now_ns() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count());
}

struct Options {
    std::string url = "ws://127.0.0.1:8080/ws";
    std::string pub_url;  // default: url
    std::string sub_url;  // default: url
    int subscribers = 100;
    int publishers = 1;
    int channels = 1;
    int channels_per_subscriber = 1;
    double rate = 1000;  // messages per second, all publishers together
    int payload = 128;   // bytes of the `data` JSON
    double duration = 10;
    double warmup = 1;
    double drain = 3;
    int threads = 1;
    bool publisher_thread = false;
    int stalled = 0;
    int source_addresses = 1;
    int first_source_address = 1;  // 127.0.0.<this> is the first of them
    int connect_concurrency = 200;
    std::vector<long> server_pids;
    std::string json_out;
    bool quiet = false;
};

struct Url {
    std::string host;
    std::uint16_t port = 80;
    std::string path = "/";
};

Url parse_url(const std::string& text) {
    const std::string scheme = "ws://";
    if (text.compare(0, scheme.size(), scheme) != 0) throw std::invalid_argument("only ws:// URLs: " + text);
    const auto rest = text.substr(scheme.size());
    const auto slash = rest.find('/');
    const auto authority = rest.substr(0, slash);
    Url url;
    url.path = slash == std::string::npos ? "/" : rest.substr(slash);
    const auto colon = authority.rfind(':');
    url.host = authority.substr(0, colon);
    if (colon != std::string::npos) url.port = static_cast<std::uint16_t>(std::stoi(authority.substr(colon + 1)));
    return url;
}

constexpr int channel_digits = 6;
constexpr int time_digits = 20;
constexpr int publisher_digits = 6;
constexpr int seq_digits = 12;

std::string channel_name(int index) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "bench:%0*d", channel_digits, index);
    return buf;
}

// Writes `value` as exactly `width` decimal digits (zero-padded) at `out`.
void put_digits(char* out, int width, std::uint64_t value) {
    for (int i = width - 1; i >= 0; --i) {
        out[i] = static_cast<char>('0' + value % 10);
        value /= 10;
    }
}

std::optional<std::uint64_t> read_digits(std::string_view text, std::string_view key, int width) {
    const auto at = text.find(key);
    if (at == std::string_view::npos || at + key.size() + static_cast<std::size_t>(width) > text.size()) {
        return std::nullopt;
    }
    std::uint64_t value = 0;
    for (int i = 0; i < width; ++i) {
        const char c = text[at + key.size() + static_cast<std::size_t>(i)];
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return value;
}

// One publisher's publish frame, masked once; send() patches the channel, the
// time and the sequence digits in place.
class FrameTemplate {
public:
    FrameTemplate(loadgen::WsConnection& conn, int publisher, int payload_bytes) {
        // {"t":"<20>","p":"<6>","s":"<12>","x":"<pad>"}
        std::string data = "{\"t\":\"" + std::string(time_digits, '0') + "\",\"p\":\"" +
                           std::string(publisher_digits, '0') + "\",\"s\":\"" + std::string(seq_digits, '0') +
                           "\",\"x\":\"\"}";
        if (static_cast<int>(data.size()) < payload_bytes) {
            data.insert(data.size() - 2, static_cast<std::size_t>(payload_bytes) - data.size(), 'x');
        }
        put_digits(data.data() + data.find("\"p\":\"") + 5, publisher_digits, static_cast<std::uint64_t>(publisher));
        const std::string text = "{\"type\":\"publish\",\"channel\":\"" + channel_name(0) + "\",\"data\":" + data + "}";
        channel_at_ = text.find("bench:") + 6;
        time_at_ = text.find("\"t\":\"") + 5;
        seq_at_ = text.find("\"s\":\"") + 5;
        std::vector<char> frame;
        conn.append_header(frame, 0x81, text.size());
        payload_offset_ = frame.size();
        frame.insert(frame.end(), text.begin(), text.end());
        conn.mask(frame.data() + payload_offset_, text.size(), 0);
        masked_ = std::move(frame);
        plain_scratch_.resize(std::max({channel_digits, time_digits, seq_digits}));
    }

    std::size_t size() const { return masked_.size(); }

    void append(loadgen::WsConnection& conn, int channel, std::uint64_t time_ns, std::uint64_t seq) {
        std::vector<char>& out = conn.append_buffer();
        const std::size_t start = out.size();
        out.insert(out.end(), masked_.begin(), masked_.end());
        patch(conn, out.data() + start, channel_at_, channel_digits, static_cast<std::uint64_t>(channel));
        patch(conn, out.data() + start, time_at_, time_digits, time_ns);
        patch(conn, out.data() + start, seq_at_, seq_digits, seq);
    }

private:
    void patch(loadgen::WsConnection& conn, char* frame, std::size_t at, int width, std::uint64_t value) {
        put_digits(plain_scratch_.data(), width, value);
        conn.mask(plain_scratch_.data(), static_cast<std::size_t>(width), at);
        std::copy(plain_scratch_.data(), plain_scratch_.data() + width, frame + payload_offset_ + at);
    }

    std::vector<char> masked_;
    std::vector<char> plain_scratch_;
    std::size_t payload_offset_ = 0;
    std::size_t channel_at_ = 0, time_at_ = 0, seq_at_ = 0;
};

struct Subscriber {
    std::unique_ptr<loadgen::WsConnection> conn;
    std::vector<int> channels;  // subscribed in this order, request ids 1..n
    int acks = 0;
    bool acked = false;         // every subscribe answered with an ack
    bool stalled = false;       // stops reading once acked (--stalled)
    std::vector<std::uint64_t> last_seq;  // per publisher, 0 = none yet (sequences start at 1)
};

struct Publisher {
    std::unique_ptr<loadgen::WsConnection> conn;
    std::unique_ptr<FrameTemplate> frame;
    int index = 0;
    std::uint64_t sent = 0;
};

struct Shared;

// One thread, one io_context, a share of the connections.
struct Worker {
    asio::io_context io;
    std::vector<Subscriber> subs;
    std::vector<Publisher> pubs;
    loadgen::Histogram latency;
    std::vector<std::uint64_t> sent_per_channel;
    std::uint64_t unique_received = 0, out_of_order = 0, malformed = 0, measured = 0;
    std::atomic<std::uint64_t> delivered_view{0};  // for the progress line
    std::atomic<int> opened{0}, acked{0}, failed{0}, closed{0};
    std::thread thread;
};

struct Shared {
    Options options;
    asio::ip::tcp::endpoint pub_endpoint, sub_endpoint;
    std::string pub_host, sub_host, pub_path, sub_path;
    std::atomic<bool> publishing{false};
    std::atomic<bool> stop_publishing{false};
    std::uint64_t t0_ns = 0;        // the schedule's origin
    // Read by subscribers on every worker, which share no lock with main: atomics.
    std::atomic<std::uint64_t> measure_from_ns{0};
    std::atomic<std::uint64_t> measure_until_ns{0};
    std::atomic<bool> backlog_overflow{false};
};

asio::ip::address source_address(const Shared& shared, int connection) {
    if (shared.options.source_addresses <= 1 && shared.options.first_source_address == 1) return {};
    const int n = connection % shared.options.source_addresses;
    return asio::ip::make_address_v4((127u << 24) | static_cast<unsigned>(shared.options.first_source_address + n));
}

std::uint32_t random_mask(std::mt19937& rng) { return static_cast<std::uint32_t>(rng()) | 1u; }

void on_subscriber_text(Shared& shared, Worker& w, Subscriber& sub, std::string_view text) {
    if (!sub.acked) {
        if (text.find("\"type\":\"ack\"") != std::string_view::npos) {
            if (++sub.acks == static_cast<int>(sub.channels.size())) {
                sub.acked = true;
                w.acked.fetch_add(1, std::memory_order_relaxed);
                if (sub.stalled) sub.conn->stop_reading();
            }
        } else if (text.find("\"type\":\"error\"") != std::string_view::npos) {
            std::cerr << "subscribe refused: " << text << '\n';
            w.failed.fetch_add(1, std::memory_order_relaxed);
        }
        return;
    }
    if (sub.stalled || text.compare(0, 17, "{\"type\":\"message\"") != 0) return;
    const auto time = read_digits(text, "\"t\":\"", time_digits);
    const auto pub = read_digits(text, "\"p\":\"", publisher_digits);
    const auto seq = read_digits(text, "\"s\":\"", seq_digits);
    if (!time || !pub || !seq || *pub >= sub.last_seq.size()) {
        ++w.malformed;
        return;
    }
    auto& last = sub.last_seq[*pub];
    if (*seq <= last) {
        ++w.out_of_order;
        return;
    }
    last = *seq;
    ++w.unique_received;
    w.delivered_view.store(w.unique_received, std::memory_order_relaxed);
    if (*time >= shared.measure_from_ns.load(std::memory_order_relaxed) &&
        *time < shared.measure_until_ns.load(std::memory_order_relaxed)) {
        const auto now = now_ns();
        w.latency.record(now > *time ? now - *time : 0);
        ++w.measured;
    }
}

void start_subscriber(Shared& shared, Worker& w, std::size_t index, int global_index) {
    Subscriber& sub = w.subs[index];
    sub.conn->start(
        shared.sub_endpoint, source_address(shared, global_index), shared.sub_host, shared.sub_path,
        [&shared, &w, &sub](std::error_code ec) {
            if (ec) {
                w.failed.fetch_add(1, std::memory_order_relaxed);
                return;
            }
            w.opened.fetch_add(1, std::memory_order_relaxed);
            for (std::size_t k = 0; k < sub.channels.size(); ++k) {
                sub.conn->append_text("{\"type\":\"subscribe\",\"channel\":\"" + channel_name(sub.channels[k]) +
                                      "\",\"id\":" + std::to_string(k + 1) + "}");
            }
            sub.conn->flush();
            (void)shared;
        },
        [&shared, &w, &sub](std::string_view text) { on_subscriber_text(shared, w, sub, text); },
        [&w](std::error_code) { w.closed.fetch_add(1, std::memory_order_relaxed); });
}

void start_publisher(Shared& shared, Worker& w, std::size_t index, int global_index) {
    Publisher& pub = w.pubs[index];
    pub.conn->start(
        shared.pub_endpoint, source_address(shared, global_index), shared.pub_host, shared.pub_path,
        [&w](std::error_code ec) {
            if (ec) {
                w.failed.fetch_add(1, std::memory_order_relaxed);
                return;
            }
            w.opened.fetch_add(1, std::memory_order_relaxed);
        },
        [](std::string_view) {},  // welcome; no ids on publishes, so no acks
        [&w](std::error_code) { w.closed.fetch_add(1, std::memory_order_relaxed); });
}

// Sends what the fixed schedule says is due, for every publisher of the worker.
void publish_tick(Shared& shared, Worker& w, asio::steady_timer& timer) {
    if (shared.publishing.load(std::memory_order_acquire) && !shared.stop_publishing.load(std::memory_order_acquire)) {
        const Options& o = shared.options;
        const double per_ns = o.rate / 1e9;
        const auto now = now_ns();
        // Message g is due at t0 + g / rate, so floor(elapsed * rate) + 1 of
        // them are due now (message 0 at t0 itself). Counting only
        // floor(elapsed * rate) would send each one a whole interval late and
        // add 1/rate of latency that no server caused.
        const auto total_due =
            now >= shared.t0_ns ? static_cast<std::uint64_t>(static_cast<double>(now - shared.t0_ns) * per_ns) + 1 : 0;
        const auto P = static_cast<std::uint64_t>(o.publishers);
        for (Publisher& pub : w.pubs) {
            if (!pub.conn->open()) continue;
            // Message k of publisher j is global message k * P + j.
            const auto j = static_cast<std::uint64_t>(pub.index);
            const std::uint64_t due = total_due > j ? (total_due - j + P - 1) / P : 0;
            while (pub.sent < due) {
                const std::uint64_t global = pub.sent * P + j;
                const auto intended = shared.t0_ns + static_cast<std::uint64_t>(static_cast<double>(global) / per_ns);
                const int channel = static_cast<int>(global % static_cast<std::uint64_t>(o.channels));
                ++pub.sent;
                pub.frame->append(*pub.conn, channel, intended, pub.sent);
                ++w.sent_per_channel[static_cast<std::size_t>(channel)];
            }
            if (pub.conn->backlog() > (64u << 20)) shared.backlog_overflow.store(true);
            pub.conn->flush();
        }
    }
    // A cancel() can miss a wait that has already expired: the flag ends the loop for sure.
    if (shared.stop_publishing.load(std::memory_order_acquire)) return;
    timer.expires_after(std::chrono::microseconds(500));
    timer.async_wait([&shared, &w, &timer](std::error_code ec) {
        if (!ec) publish_tick(shared, w, timer);
    });
}

template <class Pred>
bool wait_for(Pred pred, double seconds, const std::function<void()>& progress = {}) {
    const auto until = clock_type::now() + std::chrono::duration<double>(seconds);
    auto next_progress = clock_type::now() + std::chrono::seconds(1);
    while (!pred()) {
        if (clock_type::now() >= until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (progress && clock_type::now() >= next_progress) {
            progress();
            next_progress += std::chrono::seconds(1);
        }
    }
    return true;
}

std::string json_number(double v) {
    if (!std::isfinite(v)) return "null";
    std::ostringstream out;
    out.precision(6);
    out << v;
    return out.str();
}

}  // namespace

int main(int argc, char** argv) {
    Shared shared;
    Options& o = shared.options;
    CLI::App app{"wshub_loadgen: open-loop publish/subscribe load against a server of docs/protocol.md's subset"};
    app.add_option("--url", o.url, "ws://host:port/path of the server")->capture_default_str();
    app.add_option("--pub-url", o.pub_url, "Where publishers connect (default --url): another instance");
    app.add_option("--sub-url", o.sub_url, "Where subscribers connect (default --url)");
    app.add_option("--subscribers", o.subscribers, "Subscriber connections")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--publishers", o.publishers, "Publisher connections; 0: connect and hold only")
        ->check(CLI::Range(0, 999'999))
        ->capture_default_str();
    app.add_option("--channels", o.channels, "Channels; subscriber i joins channel i % channels")
        ->check(CLI::Range(1, 999'999))
        ->capture_default_str();
    app.add_option("--channels-per-subscriber", o.channels_per_subscriber,
                   "Channels each subscriber joins: (i * k + j) % channels for j < k")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    app.add_option("--rate", o.rate, "Messages per second, all publishers together")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--payload", o.payload, "Bytes of each message's data JSON (at least 60)")->check(CLI::Range(1, 1 << 20))->capture_default_str();
    app.add_option("--duration", o.duration, "Seconds measured (after the warm-up)")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--warmup", o.warmup, "Seconds published but not measured")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--drain", o.drain, "Seconds to wait for the last deliveries")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--threads", o.threads, "Load generator threads")->check(CLI::Range(1, 64))->capture_default_str();
    app.add_option("--stalled", o.stalled,
                   "Subscribers (the first N) that stop reading once subscribed, with a 4 KiB receive buffer; "
                   "their messages are not expected")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_flag("--publisher-thread", o.publisher_thread,
                 "Publishers on a thread of their own, so a burst of deliveries cannot delay the schedule");
    app.add_option("--source-addresses", o.source_addresses,
                   "Bind connections to N loopback addresses from --first-source-address on (more ephemeral ports)")
        ->check(CLI::Range(1, 250))
        ->capture_default_str();
    app.add_option("--first-source-address", o.first_source_address,
                   "The first source address is 127.0.0.<this>; load generators run side by side take disjoint ranges")
        ->check(CLI::Range(1, 250))
        ->capture_default_str();
    app.add_option("--connect-concurrency", o.connect_concurrency, "Handshakes in flight at once")
        ->check(CLI::Range(1, 100'000))
        ->capture_default_str();
    app.add_option("--server-pid", o.server_pids, "Server process(es) whose CPU and RSS to report (repeatable)");
    app.add_option("--json-out", o.json_out, "Write the JSON result here instead of stdout");
    app.add_flag("--quiet", o.quiet, "No progress lines");
    CLI11_PARSE(app, argc, argv);
    if (o.first_source_address + o.source_addresses - 1 > 254) {
        std::cerr << "wshub_loadgen: --first-source-address + --source-addresses - 1 must stay within 127.0.0.254\n";
        return 2;
    }

    try {
        const Url pub_url = parse_url(o.pub_url.empty() ? o.url : o.pub_url);
        const Url sub_url = parse_url(o.sub_url.empty() ? o.url : o.sub_url);
        asio::io_context resolver_io;
        asio::ip::tcp::resolver resolver(resolver_io);
        shared.pub_endpoint = *resolver.resolve(pub_url.host, std::to_string(pub_url.port)).begin();
        shared.sub_endpoint = *resolver.resolve(sub_url.host, std::to_string(sub_url.port)).begin();
        shared.pub_host = pub_url.host + ":" + std::to_string(pub_url.port);
        shared.sub_host = sub_url.host + ":" + std::to_string(sub_url.port);
        shared.pub_path = pub_url.path;
        shared.sub_path = sub_url.path;
    } catch (const std::exception& e) {
        std::cerr << "wshub_loadgen: " << e.what() << '\n';
        return 2;
    }

    const auto log = [&](const std::string& line) {
        if (!o.quiet) std::cerr << line << std::endl;
    };

    std::vector<std::optional<loadgen::ProcSample>> servers_before_connect;
    for (long pid : o.server_pids) servers_before_connect.push_back(loadgen::sample_process(pid));

    // ---- Connections, spread over the workers -------------------------------
    std::mt19937 rng(std::random_device{}());
    std::vector<std::unique_ptr<Worker>> workers;
    for (int t = 0; t < o.threads + (o.publisher_thread ? 1 : 0); ++t) {
        workers.push_back(std::make_unique<Worker>());
        workers.back()->sent_per_channel.assign(static_cast<std::size_t>(o.channels), 0);
    }
    std::vector<std::size_t> subs_on_channel(static_cast<std::size_t>(o.channels), 0);
    for (int i = 0; i < o.subscribers; ++i) {
        Worker& w = *workers[static_cast<std::size_t>(i % o.threads)];
        Subscriber sub;
        sub.conn = std::make_unique<loadgen::WsConnection>(w.io, random_mask(rng));
        sub.stalled = i < o.stalled;
        if (sub.stalled) sub.conn->set_receive_buffer(4096);
        for (int k = 0; k < o.channels_per_subscriber; ++k) {
            const int channel = static_cast<int>(
                (static_cast<long long>(i) * o.channels_per_subscriber + k) % o.channels);
            sub.channels.push_back(channel);
            if (!sub.stalled) ++subs_on_channel[static_cast<std::size_t>(channel)];
        }
        sub.last_seq.assign(static_cast<std::size_t>(std::max(o.publishers, 1)), 0);
        w.subs.push_back(std::move(sub));
    }
    for (int j = 0; j < o.publishers; ++j) {
        Worker& w = o.publisher_thread ? *workers.back() : *workers[static_cast<std::size_t>(j % o.threads)];
        Publisher pub;
        pub.conn = std::make_unique<loadgen::WsConnection>(w.io, random_mask(rng));
        pub.frame = std::make_unique<FrameTemplate>(*pub.conn, j, o.payload);
        pub.index = j;
        w.pubs.push_back(std::move(pub));
    }

    // Handshakes are started in waves of --connect-concurrency, so a listen backlog is never flooded.
    const auto opened_total = [&] {
        int n = 0;
        for (auto& w : workers) n += w->opened.load() + w->failed.load();
        return n;
    };
    const auto acked_total = [&] {
        int n = 0;
        for (auto& w : workers) n += w->acked.load();
        return n;
    };
    const auto failed_total = [&] {
        int n = 0;
        for (auto& w : workers) n += w->failed.load();
        return n;
    };
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (auto& w : workers) guards.push_back(asio::make_work_guard(w->io));
    for (auto& w : workers) {
        Worker* worker = w.get();
        w->thread = std::thread([worker] { worker->io.run(); });
    }

    const auto connect_started = clock_type::now();
    int started = 0;
    const int total_connections = o.subscribers + o.publishers;
    int global = 0;
    std::vector<std::pair<Worker*, std::size_t>> order;  // (worker, subscriber index), then publishers
    for (auto& w : workers) {
        for (std::size_t i = 0; i < w->subs.size(); ++i) order.emplace_back(w.get(), i);
    }
    while (started < o.subscribers) {
        const int batch = std::min(o.connect_concurrency, o.subscribers - started);
        for (int k = 0; k < batch; ++k, ++started, ++global) {
            auto [w, i] = order[static_cast<std::size_t>(started)];
            asio::post(w->io, [&shared, w = w, i = i, g = global] { start_subscriber(shared, *w, i, g); });
        }
        if (!wait_for([&] { return opened_total() >= started; }, 60)) {
            std::cerr << "wshub_loadgen: connections stalled at " << opened_total() << " of " << started << '\n';
            return 1;
        }
    }
    if (!wait_for([&] { return acked_total() + failed_total() >= o.subscribers; }, 60)) {
        std::cerr << "wshub_loadgen: only " << acked_total() << " of " << o.subscribers << " subscriptions acked\n";
        return 1;
    }
    const double connect_seconds = std::chrono::duration<double>(clock_type::now() - connect_started).count();
    log("subscribers: " + std::to_string(acked_total()) + " subscribed in " + json_number(connect_seconds) + " s" +
        (failed_total() > 0 ? ", " + std::to_string(failed_total()) + " failed" : std::string()));

    for (auto& w : workers) {
        for (std::size_t i = 0; i < w->pubs.size(); ++i, ++global) {
            asio::post(w->io, [&shared, w = w.get(), i, g = global] { start_publisher(shared, *w, i, g); });
        }
    }
    if (!wait_for([&] { return opened_total() >= total_connections; }, 60)) {
        std::cerr << "wshub_loadgen: publishers did not connect\n";
        return 1;
    }

    // ---- Publish, open loop ----------------------------------------------------
    std::vector<std::optional<loadgen::ProcSample>> servers_before;
    for (long pid : o.server_pids) servers_before.push_back(loadgen::sample_process(pid));
    // The servers' highest RSS seen while publishing, sampled once a second and at the end.
    std::vector<std::uint64_t> rss_peaks(o.server_pids.size(), 0);
    const auto sample_rss_peaks = [&] {
        for (std::size_t i = 0; i < o.server_pids.size(); ++i) {
            if (const auto sample = loadgen::sample_process(o.server_pids[i])) {
                rss_peaks[i] = std::max<std::uint64_t>(rss_peaks[i], sample->rss_bytes);
            }
        }
    };
    sample_rss_peaks();
    const auto self_before = loadgen::sample_process(0);
    std::vector<std::unique_ptr<asio::steady_timer>> timers;
    const auto delivered_total = [&] {
        std::uint64_t n = 0;
        for (auto& w : workers) n += w->delivered_view.load(std::memory_order_relaxed);
        return n;
    };
    const auto window_start = clock_type::now();
    if (o.publishers > 0) {
        shared.t0_ns = now_ns() + 20'000'000;  // 20 ms from now: every worker's first tick sees it
        shared.measure_from_ns = shared.t0_ns + static_cast<std::uint64_t>(o.warmup * 1e9);
        shared.measure_until_ns = shared.measure_from_ns.load() + static_cast<std::uint64_t>(o.duration * 1e9);
        shared.publishing.store(true, std::memory_order_release);
        for (auto& w : workers) {
            timers.push_back(std::make_unique<asio::steady_timer>(w->io));
            asio::post(w->io, [&shared, w = w.get(), timer = timers.back().get()] { publish_tick(shared, *w, *timer); });
        }
        std::uint64_t last = 0;
        wait_for([&] { return now_ns() >= shared.measure_until_ns.load() || shared.backlog_overflow.load(); },
                 o.warmup + o.duration + 60, [&] {
                     sample_rss_peaks();
                     const auto d = delivered_total();
                     log("delivered/s " + std::to_string(d - last) + ", total " + std::to_string(d));
                     last = d;
                 });
        shared.stop_publishing.store(true, std::memory_order_release);
    } else {
        wait_for([] { return false; }, o.duration);
    }
    const auto window_end = clock_type::now();
    for (auto& timer : timers) {
        asio::post(timer->get_executor(), [timer = timer.get()] { timer->cancel(); });
    }
    std::uint64_t published = 0, expected = 0;
    // The publishers' counts are final once their io_context has run the cancel above.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::vector<std::uint64_t> sent_per_channel(static_cast<std::size_t>(o.channels), 0);
    for (auto& w : workers) {
        std::atomic<bool> read{false};
        asio::post(w->io, [&] {
            for (std::size_t c = 0; c < sent_per_channel.size(); ++c) sent_per_channel[c] += w->sent_per_channel[c];
            read = true;
        });
        wait_for([&] { return read.load(); }, 10);
    }
    for (std::size_t c = 0; c < sent_per_channel.size(); ++c) {
        published += sent_per_channel[c];
        expected += sent_per_channel[c] * subs_on_channel[c];
    }
    wait_for([&] { return delivered_total() >= expected; }, o.drain);

    sample_rss_peaks();
    std::vector<std::optional<loadgen::ProcSample>> servers_after;
    for (long pid : o.server_pids) servers_after.push_back(loadgen::sample_process(pid));
    const auto self_after = loadgen::sample_process(0);

    // ---- Stop and gather ---------------------------------------------------------
    for (auto& g : guards) g.reset();
    for (auto& w : workers) {
        asio::post(w->io, [w = w.get()] {
            for (auto& s : w->subs) s.conn->close();
            for (auto& p : w->pubs) p.conn->close();
        });
    }
    for (auto& w : workers) w->thread.join();

    loadgen::Histogram latency;
    std::uint64_t received = 0, out_of_order = 0, malformed = 0, measured = 0;
    for (auto& w : workers) {
        latency.merge(w->latency);
        received += w->unique_received;
        out_of_order += w->out_of_order;
        malformed += w->malformed;
        measured += w->measured;
    }
    const double window_seconds = std::chrono::duration<double>(window_end - window_start).count();
    const double measured_seconds = o.publishers > 0 ? o.duration : 0;

    std::ostringstream json;
    json << "{\n  \"config\": {\"url\": \"" << o.url << "\", \"pub_url\": \"" << (o.pub_url.empty() ? o.url : o.pub_url)
         << "\", \"sub_url\": \"" << (o.sub_url.empty() ? o.url : o.sub_url) << "\", \"subscribers\": " << o.subscribers
         << ", \"publishers\": " << o.publishers << ", \"channels\": " << o.channels
         << ", \"channels_per_subscriber\": " << o.channels_per_subscriber
         << ", \"rate\": " << json_number(o.rate) << ", \"payload\": " << o.payload
         << ", \"duration\": " << json_number(o.duration) << ", \"warmup\": " << json_number(o.warmup)
         << ", \"threads\": " << o.threads
         << ", \"publisher_thread\": " << (o.publisher_thread ? "true" : "false")
         << ", \"stalled\": " << o.stalled << "},\n";
    json << "  \"connect\": {\"subscribed\": " << acked_total() << ", \"failed\": " << failed_total()
         << ", \"seconds\": " << json_number(connect_seconds)
         << ", \"per_second\": " << json_number(connect_seconds > 0 ? o.subscribers / connect_seconds : 0) << "},\n";
    json << "  \"published\": " << published << ", \"expected\": " << expected << ", \"delivered\": " << received
         << ", \"lost\": " << (expected > received ? expected - received : 0) << ", \"out_of_order\": " << out_of_order
         << ", \"malformed\": " << malformed << ",\n";
    json << "  \"publisher_backlog_overflow\": " << (shared.backlog_overflow.load() ? "true" : "false") << ",\n";
    json << "  \"measured_deliveries\": " << measured << ", \"delivered_per_second\": "
         << json_number(measured_seconds > 0 ? static_cast<double>(measured) / measured_seconds : 0) << ",\n";
    json << "  \"latency_us\": {\"p50\": " << json_number(latency.quantile(0.5) / 1e3)
         << ", \"p99\": " << json_number(latency.quantile(0.99) / 1e3)
         << ", \"p999\": " << json_number(latency.quantile(0.999) / 1e3)
         << ", \"max\": " << json_number(latency.max() / 1e3) << "},\n";
    json << "  \"loadgen_cpu_seconds\": "
         << json_number(self_before && self_after ? self_after->cpu_seconds - self_before->cpu_seconds : -1) << ",\n";
    json << "  \"window_seconds\": " << json_number(window_seconds) << ",\n";
    json << "  \"servers\": [";
    double server_cpu = 0;
    for (std::size_t i = 0; i < o.server_pids.size(); ++i) {
        const auto& before = servers_before[i];
        const auto& after = servers_after[i];
        const auto& initial = servers_before_connect[i];
        const double cpu = before && after ? after->cpu_seconds - before->cpu_seconds : -1;
        if (cpu > 0) server_cpu += cpu;
        json << (i ? ", " : "") << "{\"pid\": " << o.server_pids[i] << ", \"cpu_seconds\": " << json_number(cpu)
             << ", \"rss_bytes_before_connect\": " << (initial ? initial->rss_bytes : 0)
             << ", \"rss_bytes_connected\": " << (before ? before->rss_bytes : 0)
             << ", \"rss_bytes_peak\": " << rss_peaks[i]
             << ", \"rss_bytes_end\": " << (after ? after->rss_bytes : 0) << "}";
    }
    json << "],\n";
    double rss_per_connection = 0;
    if (!o.server_pids.empty() && servers_before_connect[0] && servers_before[0] && total_connections > 0) {
        rss_per_connection = (static_cast<double>(servers_before[0]->rss_bytes) -
                              static_cast<double>(servers_before_connect[0]->rss_bytes)) /
                             total_connections;
    }
    json << "  \"server_rss_bytes_per_connection\": " << json_number(rss_per_connection) << ",\n";
    json << "  \"delivered_per_server_cpu_second\": "
         << json_number(server_cpu > 0 ? static_cast<double>(received) / server_cpu : 0) << "\n}\n";

    if (o.json_out.empty()) {
        std::cout << json.str();
    } else {
        std::ofstream(o.json_out) << json.str();
    }
    log("published " + std::to_string(published) + ", delivered " + std::to_string(received) + " of " +
        std::to_string(expected) + ", p99 " + json_number(latency.quantile(0.99) / 1e3) + " us");
    return 0;
}
