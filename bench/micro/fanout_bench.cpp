// wshub_fanout_bench: the hub's fan-out path alone (Google Benchmark), with
// heap allocations counted by a replaced global operator new.
//
//   build/bench/wshub_fanout_bench                      all sizes
//   build/bench/wshub_fanout_bench --benchmark_filter=/1000
//
// One channel with N local subscribers on an in-process LocalPubSub and a
// transport that only counts frames (no socket, no copy): each iteration
// publishes one message through the hub and runs the loop until every
// subscriber was handed the frame. Reported per iteration: time, and the
// counters
//   allocs_per_message    heap allocations for one message, all subscribers
//   allocs_per_recipient  allocs_per_message / N
// The design's promise is that the second is ~0: a message is encoded once
// and the same SharedFrame goes to every subscriber, so the count must not
// grow with N (compare the rows for 100, 1,000 and 10,000).
// GCC pairs the replaced operator delete below (free) with inlined new
// expressions and calls it a mismatch; the replacement is the point here.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include <asio/io_context.hpp>

#include "wshub/hub.hpp"
#include "wshub/local_pubsub.hpp"

namespace {
std::atomic<std::uint64_t> allocations{0};
}  // namespace

// Counting allocator for the whole process (the benchmark library's own
// allocations happen outside the measured loop).
void* operator new(std::size_t size) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

// Satisfies the Transport concept; send() only counts (and keeps the last
// frame alive, as a real transport's queue would for a moment).
struct CountingTransport {
    void set_handlers(wshub::TransportHandlers h) { handlers = std::move(h); }
    void send(wshub::ConnectionId, const wshub::SharedFrame& frame) {
        ++sent;
        last = frame;
    }
    void close(wshub::ConnectionId, std::uint16_t, std::string_view) {}
    void terminate(wshub::ConnectionId) {}
    wshub::QueueStats queued(wshub::ConnectionId) const { return {}; }
    void stop_accepting() {}

    wshub::TransportHandlers handlers;
    std::uint64_t sent = 0;
    wshub::SharedFrame last;
};

void BM_Fanout(benchmark::State& state) {
    const auto subscribers = static_cast<std::uint64_t>(state.range(0));
    asio::io_context io;
    CountingTransport transport;
    wshub::LocalPubSub pubsub(io.get_executor());
    wshub::HubConfig config;
    config.instance_id = "bench";
    config.max_queue_messages = 1 << 20;
    wshub::Hub<CountingTransport, wshub::LocalPubSub> hub(io.get_executor(), transport, pubsub, config);
    for (std::uint64_t id = 1; id <= subscribers; ++id) {
        transport.handlers.on_open(id, {});
        transport.handlers.on_message(id, R"({"type":"subscribe","channel":"room"})", wshub::MessageKind::text);
    }
    io.run();
    io.restart();
    const std::string data = R"({"name":"bench","text":")" + std::string(96, 'x') + R"("})";

    std::uint64_t allocs = 0;
    std::uint64_t messages = 0;
    for (auto _ : state) {
        const auto target = transport.sent + subscribers;
        const auto before = allocations.load(std::memory_order_relaxed);
        hub.publish("room", data);
        while (transport.sent < target) {
            io.run_one();
        }
        io.poll();  // the publish's completion
        allocs += allocations.load(std::memory_order_relaxed) - before;
        ++messages;
        io.restart();
    }
    state.counters["allocs_per_message"] = static_cast<double>(allocs) / static_cast<double>(messages);
    state.counters["allocs_per_recipient"] =
        static_cast<double>(allocs) / static_cast<double>(messages) / static_cast<double>(subscribers);
    state.counters["deliveries_per_second"] =
        benchmark::Counter(static_cast<double>(messages * subscribers), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_Fanout)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
