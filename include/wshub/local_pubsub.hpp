// wshub/local_pubsub.hpp: the in-process PubSub for a single instance.
//
// No Redis, no network: a publish is delivered to this process's subscribers
// of the topic, later on the executor (never inside the publish call), in
// publish order; the publishes of one pass of the io_context are delivered
// together, by one handler. It is always `up`. Use it when one instance is
// all you run, and in tests.
//
// Thread safety: not thread-safe. Give it the same executor as the Hub: when
// the io_context runs on several threads, that must be one strand shared by
// both (`auto strand = asio::make_strand(io);`), because its deliveries run on
// that executor and read the subscription set the hub changes.
#pragma once

#include <string>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include "wshub/pubsub_concept.hpp"

namespace wshub {

class LocalPubSub {
public:
    explicit LocalPubSub(asio::any_io_executor executor) : executor_(std::move(executor)) {}

    LocalPubSub(const LocalPubSub&) = delete;
    LocalPubSub& operator=(const LocalPubSub&) = delete;

    void set_handlers(PubSubHandlers handlers) { handlers_ = std::move(handlers); }

    void subscribe(const std::string& topic, Completion done) {
        topics_.insert(topic);
        complete(std::move(done));
    }

    void unsubscribe(const std::string& topic, Completion done) {
        topics_.erase(topic);
        complete(std::move(done));
    }

    void publish(const std::string& topic, std::string payload, Completion done) {
        // The publishes of one pass of the io_context are delivered by one
        // handler, in order: the hub then fans them out as one batch per
        // subscriber (one write each), as it does with a Redis read that holds
        // several messages, instead of one write per publisher.
        pending_.push_back({topic, std::move(payload)});
        if (!delivery_posted_) {
            delivery_posted_ = true;
            asio::post(executor_, [this] { deliver_pending(); });
        }
        complete(std::move(done));
    }

    PubSubState state() const noexcept { return PubSubState::up; }

    // Topics currently subscribed (for tests and metrics).
    std::size_t subscribed_topics() const noexcept { return topics_.size(); }
    bool is_subscribed(const std::string& topic) const { return topics_.count(topic) != 0; }

private:
    struct Pending {
        std::string topic;
        std::string payload;
    };

    void deliver_pending() {
        delivery_posted_ = false;
        // Publishes made while delivering (a handler that publishes) go to the next pass.
        std::vector<Pending> batch;
        batch.swap(pending_);
        for (auto& message : batch) {
            // Delivery is decided when the message is delivered, not when it
            // is published, exactly as a Redis subscriber that left in between
            // would not receive it either.
            if (topics_.count(message.topic) != 0 && handlers_.on_message) {
                handlers_.on_message(std::move(message.topic), std::move(message.payload));
            }
        }
        batch.clear();
        if (pending_.empty()) pending_.swap(batch);  // keep the capacity: no allocation per pass once warm
    }

    void complete(Completion done) {
        if (done) asio::post(executor_, [done = std::move(done)] { done(std::error_code{}); });
    }

    asio::any_io_executor executor_;
    PubSubHandlers handlers_;
    std::unordered_set<std::string> topics_;
    std::vector<Pending> pending_;  // published, not yet delivered
    bool delivery_posted_ = false;
};

}  // namespace wshub
