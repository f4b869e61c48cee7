// tests/support/fake_pubsub.hpp: a PubSub whose calls the test completes by hand.
//
// Every subscribe/unsubscribe/publish waits in `pending` until the test
// completes it, with success or an error, so races (a subscribe still in
// flight when the channel empties, an unsubscribe followed at once by a
// subscribe) can be played out step by step. The test also injects messages,
// state changes and resubscriptions.
//
// Thread safety: none; the test and the io_context run on one thread.
#pragma once

#include <algorithm>
#include <deque>
#include <string>
#include <system_error>
#include <vector>

#include "wshub/pubsub_concept.hpp"

namespace wshub::test {

class FakePubSub {
public:
    enum class Kind { subscribe, unsubscribe, publish };
    struct Call {
        Kind kind;
        std::string topic;
        std::string payload;
        Completion done;
    };

    void set_handlers(PubSubHandlers handlers) { handlers_ = std::move(handlers); }
    void subscribe(const std::string& topic, Completion done) { record({Kind::subscribe, topic, {}, std::move(done)}); }
    void unsubscribe(const std::string& topic, Completion done) {
        record({Kind::unsubscribe, topic, {}, std::move(done)});
    }
    void publish(const std::string& topic, std::string payload, Completion done) {
        record({Kind::publish, topic, std::move(payload), std::move(done)});
    }
    PubSubState state() const noexcept { return state_; }

    // --- test control ----------------------------------------------------------
    std::deque<Call> pending;   // calls not yet completed, oldest first
    std::vector<Call> history;  // every call made (without completions)

    // Completes the oldest pending call of `kind` on `topic`; false if there is none.
    bool complete(Kind kind, const std::string& topic, std::error_code ec = {}) {
        const auto it = std::find_if(pending.begin(), pending.end(),
                                     [&](const Call& c) { return c.kind == kind && c.topic == topic; });
        if (it == pending.end()) return false;
        Call call = std::move(*it);
        pending.erase(it);
        if (call.done) call.done(ec);
        return true;
    }

    void complete_all(std::error_code ec = {}) {
        while (!pending.empty()) {
            Call call = std::move(pending.front());
            pending.pop_front();
            if (call.done) call.done(ec);
        }
    }

    std::size_t count(Kind kind, const std::string& topic) const {
        return static_cast<std::size_t>(std::count_if(history.begin(), history.end(), [&](const Call& c) {
            return c.kind == kind && c.topic == topic;
        }));
    }

    void deliver(const std::string& topic, const std::string& payload) { handlers_.on_message(topic, payload); }
    void set_state(PubSubState state) {
        state_ = state;
        handlers_.on_state(state);
    }
    void resubscribed(std::vector<std::string> topics) { handlers_.on_resubscribed(std::move(topics)); }

private:
    void record(Call call) {
        history.push_back(Call{call.kind, call.topic, call.payload, {}});
        pending.push_back(std::move(call));
    }

    PubSubHandlers handlers_;
    PubSubState state_ = PubSubState::up;
};

}  // namespace wshub::test
