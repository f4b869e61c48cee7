// wshub/detail/redis_connection.hpp: one hiredis connection driven by an Asio executor.
//
// hiredis 0.14 brings its own protocol and callback bookkeeping but no event
// loop, no timers and no Asio adapter; this file is that adapter. The socket is
// watched through hiredis's ev.addRead/delRead/addWrite/delWrite/cleanup hooks
// with an asio::posix::stream_descriptor (released, never closed: the fd is
// hiredis's); the connect timeout and the per-command timeouts are Asio timers.
// RedisPubSub builds on it: one subscriber connection and one publisher
// connection per Redis server.
//
// Thread safety: a RedisConnection is not thread-safe. Every member must be
// called from the executor given to create() (a strand, or an io_context run by
// one thread); every handler runs on that executor and never inside the member
// call that caused it. Destruction needs no executor but must not race a member
// call.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <asio/any_io_executor.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

namespace wshub::detail {

// Why a Redis connection failed or ended. Failures of the socket itself are
// reported as system errors (std::errc::connection_refused, broken_pipe, ...);
// a close() is asio::error::operation_aborted.
enum class redis_error {
    connect_timeout = 1,   // no working connection within connect_timeout (TCP connect, AUTH, SELECT, first PING)
    command_timeout,       // a command or a SUBSCRIBE got no reply within command_timeout: server frozen or link dead
    auth_failed,           // AUTH was refused, or the server wants a password and none was given
    select_failed,         // SELECT was refused (e.g. the db index is out of range)
    handshake_failed,      // the first PING was answered with an error (e.g. LOADING)
    closed_by_server,      // the server closed the connection (shutdown, CLIENT KILL, timeout, QUIT)
    protocol_error,        // the server sent bytes hiredis cannot parse
    other,                 // hiredis reported another failure (e.g. the host name does not resolve)
    not_connected,         // the call needs an open connection
    in_subscriber_mode,    // command() on a connection that holds subscriptions (hiredis 0.14 would misroute it)
    bad_command,           // an empty command, or one hiredis refused to queue
    connect_called_twice,  // a RedisConnection connects once; create another to reconnect
};

class RedisErrorCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "wshub.redis"; }

    std::string message(int value) const override {
        switch (static_cast<redis_error>(value)) {
            case redis_error::connect_timeout: return "Redis connect timed out";
            case redis_error::command_timeout:
                return "Redis command timed out (server frozen or link dead)";
            case redis_error::auth_failed: return "Redis authentication failed";
            case redis_error::select_failed: return "Redis refused SELECT of the configured db";
            case redis_error::handshake_failed: return "Redis answered the first PING with an error";
            case redis_error::closed_by_server: return "Redis closed the connection";
            case redis_error::protocol_error: return "Redis protocol error";
            case redis_error::other: return "Redis connection error";
            case redis_error::not_connected: return "not connected to Redis";
            case redis_error::in_subscriber_mode:
                return "commands are not available on a Redis connection in subscriber mode";
            case redis_error::bad_command: return "empty or refused Redis command";
            case redis_error::connect_called_twice: return "connect() was already called on this Redis connection";
        }
        return "unknown Redis connection error";
    }
};

inline const std::error_category& redis_error_category() noexcept {
    static const RedisErrorCategory category;
    return category;
}

inline std::error_code make_error_code(redis_error e) noexcept {
    return {static_cast<int>(e), redis_error_category()};
}

}  // namespace wshub::detail

template <>
struct std::is_error_code_enum<wshub::detail::redis_error> : std::true_type {};

namespace wshub::detail {

// Where and how to connect.
struct RedisEndpoint {
    std::string host = "127.0.0.1";  // an IP address: a name is resolved by hiredis, blocking the executor
    int port = 6379;
    std::string unix_path;  // non-empty: connect to this Unix socket instead of host:port
    std::string password;   // non-empty: AUTH <password> after connecting (hiredis 0.14: no ACL user)
    int db = 0;             // non-zero: SELECT db after connecting
    // From connect() until the handshake (AUTH, SELECT or PING) is answered; zero or less: none.
    std::chrono::milliseconds connect_timeout{2000};
    // From sending a command (or a SUBSCRIBE) until its reply; zero or less: none. Messages never time out.
    std::chrono::milliseconds command_timeout{2000};
};

// The error code behind a hiredis error number and text (ac->c.err, ac->c.errstr).
inline std::error_code error_from_hiredis(int err, const char* errstr) {
    switch (err) {
        case REDIS_ERR_IO: {
            // hiredis stores strerror()'s text (sometimes behind a "what: " prefix),
            // not the errno: find the errno whose text it is.
            const std::string text = errstr != nullptr ? errstr : "";
            for (int e = 1; e < 134; ++e) {
                const std::string known = std::generic_category().message(e);
                if (text.size() >= known.size() && text.compare(text.size() - known.size(), known.size(), known) == 0) {
                    return {e, std::system_category()};
                }
            }
            return make_error_code(std::errc::io_error);
        }
        case REDIS_ERR_EOF: return make_error_code(redis_error::closed_by_server);
        case REDIS_ERR_PROTOCOL: return make_error_code(redis_error::protocol_error);
        case REDIS_ERR_OOM: return make_error_code(std::errc::not_enough_memory);
        default: return make_error_code(redis_error::other);
    }
}

// Blocks SIGPIPE in this thread for the scope and swallows the one a write to a
// closed socket raises: hiredis 0.14 writes with write(2), not send(MSG_NOSIGNAL),
// and a library must not depend on the application ignoring SIGPIPE.
class SigpipeGuard {
public:
    SigpipeGuard() noexcept {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
        sigset_t pending;
        sigemptyset(&pending);
        sigpending(&pending);
        pending_before_ = sigismember(&pending, SIGPIPE) == 1;
    }
    ~SigpipeGuard() {
        if (!pending_before_) {
            sigset_t pending;
            sigemptyset(&pending);
            sigpending(&pending);
            if (sigismember(&pending, SIGPIPE) == 1) {
                const timespec zero{0, 0};
                while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
                }
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SigpipeGuard(const SigpipeGuard&) = delete;
    SigpipeGuard& operator=(const SigpipeGuard&) = delete;

private:
    sigset_t pipe_;
    sigset_t old_;
    bool pending_before_ = false;
};

// One redisAsyncContext on an Asio executor; single use (connect once, then
// close or lose it, then create another).
//
// Handlers: a command's handler and the push handler are called while hiredis
// hands over the reply (so the Reply is valid only during the call); they may
// call any member, close() included, and may drop the last shared_ptr. Errors
// and the disconnect handler are posted. Handlers must not own the connection
// (capture a weak_ptr): it would never be freed. A handler that throws is
// caught at the hiredis boundary and rethrown from the completion handler
// that drove hiredis (so out of io_context::run, like any Asio handler).
//
// Lifetime: the connection owns the context; pending Asio waits hold only weak
// pointers, so dropping the last shared_ptr frees the context at once (whatever
// is in flight) and calls no handler that was not already posted: call close()
// first to have pending commands fail with operation_aborted. Like any Asio I/O
// object it must go before its io_context.
class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
public:
    using Reply = const redisReply*;  // valid only during the handler call
    using ReplyHandler = std::function<void(std::error_code, Reply)>;
    using clock = std::chrono::steady_clock;

    static std::shared_ptr<RedisConnection> create(asio::any_io_executor executor, RedisEndpoint endpoint) {
        return std::shared_ptr<RedisConnection>(new RedisConnection(std::move(executor), std::move(endpoint)));
    }

    RedisConnection(const RedisConnection&) = delete;
    RedisConnection& operator=(const RedisConnection&) = delete;

    ~RedisConnection() {
        state_ = State::closed;
        if (ctx_ != nullptr) redisAsyncFree(ctx_);  // pending handlers are collected and dropped uncalled
    }

    // Connects, then AUTH and SELECT when configured, else PING (a server that is
    // SIGSTOPped still completes TCP handshakes: only a reply proves it is alive).
    // done(ec) once, posted. Errors: a system error (connection_refused, ...),
    // connect_timeout, auth_failed, select_failed, handshake_failed, and
    // operation_aborted after close().
    void connect(std::function<void(std::error_code)> done) {
        if (state_ != State::idle) {
            return post_result(std::move(done), state_ == State::closed && !ever_started_
                                                    ? make_error_code(asio::error::operation_aborted)
                                                    : make_error_code(redis_error::connect_called_twice));
        }
        ever_started_ = true;
        redisAsyncContext* ac = endpoint_.unix_path.empty()
                                    ? redisAsyncConnect(endpoint_.host.c_str(), endpoint_.port)
                                    : redisAsyncConnectUnix(endpoint_.unix_path.c_str());
        if (ac == nullptr) {
            state_ = State::closed;
            return post_result(std::move(done), make_error_code(std::errc::not_enough_memory));
        }
        if (ac->err != 0) {  // failed at once: a Unix socket that is not there, an unknown host
            last_error_ = ac->errstr;
            const std::error_code ec = error_from_hiredis(ac->err, ac->errstr);
            redisAsyncFree(ac);
            state_ = State::closed;
            return post_result(std::move(done), ec);
        }
        std::error_code assign_error;
        socket_.assign(ac->c.fd, assign_error);
        if (assign_error) {
            last_error_ = assign_error.message();
            redisAsyncFree(ac);
            state_ = State::closed;
            return post_result(std::move(done), assign_error);
        }
        ctx_ = ac;
        state_ = State::connecting;
        connect_done_ = std::move(done);
        ac->data = this;
        ac->ev.data = this;
        ac->ev.addRead = &RedisConnection::ev_add_read;
        ac->ev.delRead = &RedisConnection::ev_del_read;
        ac->ev.addWrite = &RedisConnection::ev_add_write;
        ac->ev.delWrite = &RedisConnection::ev_del_write;
        ac->ev.cleanup = &RedisConnection::ev_cleanup;
        // Must come after the hooks: it asks for the first write readiness, which
        // is how hiredis learns that the non-blocking connect finished.
        redisAsyncSetConnectCallback(ac, &RedisConnection::on_connect);

        if (endpoint_.connect_timeout.count() > 0) {
            connect_timer_.expires_after(endpoint_.connect_timeout);
            connect_timer_.async_wait([weak = weak_from_this()](const std::error_code& ec) {
                if (ec) return;
                if (auto self = weak.lock()) self->on_connect_timeout();
            });
        }
    }

    // Sends one command (binary-safe arguments). Handlers are called in order:
    // done({}, reply) with the reply (an error reply such as "-ERR ..." is a reply,
    // with type REDIS_REPLY_ERROR), or done(ec, nullptr). Without a reply within
    // command_timeout the connection is closed: every pending handler gets
    // command_timeout, then the disconnect handler runs.
    void command(const std::vector<std::string>& args, ReplyHandler done) {
        if (state_ != State::open || close_requested_ || failure_.value() != 0) {
            return post_reply_error(std::move(done), make_error_code(redis_error::not_connected));
        }
        if (args.empty()) return post_reply_error(std::move(done), make_error_code(redis_error::bad_command));
        if ((ctx_->c.flags & REDIS_SUBSCRIBED) != 0) {
            return post_reply_error(std::move(done), make_error_code(redis_error::in_subscriber_mode));
        }
        auto pending = std::make_unique<Pending>();
        pending->handler = std::move(done);
        pending->has_deadline = add_deadline(pending->deadline);
        if (!send(nullptr, args, &RedisConnection::on_reply, pending.get())) {
            if (pending->has_deadline) deadlines_.erase(pending->deadline);
            return post_reply_error(std::move(pending->handler), make_error_code(redis_error::bad_command));
        }
        pending.release();  // owned by hiredis's callback list now; on_reply deletes it
        ++pending_count_;
        arm_command_timer();
    }

    // Subscriber mode: one SUBSCRIBE for all `channels`. Each confirmation, each
    // message and each unsubscribe confirmation reaches the push handler as the
    // array reply Redis sent ("subscribe"/"message"/"unsubscribe", channel, ...).
    // The confirmations of a SUBSCRIBE must arrive within command_timeout (this
    // is what notices a frozen server during a resubscribe); messages never time
    // out. Does nothing unless connected() or when `channels` is empty.
    void subscribe(const std::vector<std::string>& channels) {
        if (state_ != State::open || close_requested_ || failure_.value() != 0 || channels.empty()) return;
        // One callback for every channel: hiredis routes each push to the
        // callback registered with the channel's SUBSCRIBE.
        if (!send("SUBSCRIBE", channels, &RedisConnection::on_push, nullptr)) return;
        SubscribeWait wait;
        wait.remaining = channels.size();
        wait.has_deadline = add_deadline(wait.deadline);
        subscribe_waits_.push_back(wait);
        arm_command_timer();
    }

    // One UNSUBSCRIBE for all `channels`; each confirmation reaches the push
    // handler. Does nothing unless subscribed, or when `channels` is empty (an
    // UNSUBSCRIBE without channels can answer with a nil channel, on which
    // hiredis 0.14 asserts). hiredis drops the confirmation of a channel it does
    // not know (never subscribed, or already unsubscribed).
    void unsubscribe(const std::vector<std::string>& channels) {
        if (state_ != State::open || close_requested_ || failure_.value() != 0 || channels.empty()) return;
        if ((ctx_->c.flags & REDIS_SUBSCRIBED) == 0) return;
        send("UNSUBSCRIBE", channels, nullptr, nullptr);  // hiredis keeps no callback for it
    }

    void set_push_handler(std::function<void(Reply)> handler) {
        push_handler_ = handler ? std::make_shared<std::function<void(Reply)>>(std::move(handler)) : nullptr;
    }

    // Called once, posted, when an established connection ends: lost (the server
    // closed it, CLIENT KILL, a timeout, an I/O error) or closed by close()
    // (operation_aborted). Not called for a connect() that failed. Set after the
    // end (say from connect's done, when the loss was noticed in between), it is
    // called at once, posted: a loss is never missed for want of a handler.
    void set_disconnect_handler(std::function<void(std::error_code)> handler) {
        if (ended_) return post_result(std::move(handler), end_reason_);
        disconnect_handler_ = std::move(handler);
    }

    // Closes. Pending command handlers get operation_aborted, then the
    // disconnect handler runs (both posted); while connecting, connect's done
    // gets operation_aborted instead. Safe to call twice, from inside any handler
    // of this connection, and while connecting.
    void close() {
        if (state_ == State::closed) return;
        if (state_ == State::idle) {
            state_ = State::closed;
            return;
        }
        if (in_hiredis_) {
            // hiredis is on the stack (we are inside one of its callbacks): it
            // must not be freed under itself; the caller of hiredis finishes this.
            close_requested_ = true;
            return;
        }
        shut(make_error_code(asio::error::operation_aborted));
    }

    bool connected() const noexcept { return state_ == State::open && !close_requested_ && failure_.value() == 0; }

    // hiredis's or the server's text behind the last failure ("Connection refused",
    // "WRONGPASS invalid username-password pair ..."); for logs.
    const std::string& last_error() const noexcept { return last_error_; }

    // Commands sent and not yet answered.
    std::size_t pending_commands() const noexcept { return pending_count_; }

    const asio::any_io_executor& get_executor() const noexcept { return executor_; }

private:
    enum class State : std::uint8_t { idle, connecting, open, closed };
    enum class Step : std::uintptr_t { auth = 1, select, ping };

    using Deadlines = std::list<clock::time_point>;

    struct Pending {
        ReplyHandler handler;
        Deadlines::iterator deadline;
        bool has_deadline = false;
    };

    struct SubscribeWait {
        std::size_t remaining = 0;  // confirmations still to come
        Deadlines::iterator deadline;
        bool has_deadline = false;
    };

    RedisConnection(asio::any_io_executor executor, RedisEndpoint endpoint)
        : executor_(std::move(executor)),
          endpoint_(std::move(endpoint)),
          socket_(executor_),
          connect_timer_(executor_),
          command_timer_(executor_) {}

    static RedisConnection* owner(const redisAsyncContext* ac) { return static_cast<RedisConnection*>(ac->data); }

    // ---- posting ---------------------------------------------------------------

    void post_result(std::function<void(std::error_code)> done, std::error_code ec) {
        if (done) asio::post(executor_, [done = std::move(done), ec] { done(ec); });
    }

    void post_reply_error(ReplyHandler done, std::error_code ec) {
        if (done) asio::post(executor_, [done = std::move(done), ec] { done(ec, nullptr); });
    }

    // ---- sending ---------------------------------------------------------------

    // `verb` (when not null) goes before `args`: SUBSCRIBE and UNSUBSCRIBE send
    // the caller's channel list without copying it.
    bool send(const char* verb, const std::vector<std::string>& args, redisCallbackFn* fn, void* privdata) {
        argv_.clear();
        argv_len_.clear();
        if (verb != nullptr) {
            argv_.push_back(verb);
            argv_len_.push_back(std::strlen(verb));
        }
        for (const auto& arg : args) {
            argv_.push_back(arg.data());
            argv_len_.push_back(arg.size());
        }
        return redisAsyncCommandArgv(ctx_, fn, privdata, static_cast<int>(argv_.size()), argv_.data(),
                                     argv_len_.data()) == REDIS_OK;
    }

    // ---- timeouts --------------------------------------------------------------

    // Deadlines are kept in send order, so the oldest is at the front and one
    // timer, re-armed lazily when it fires, covers them all.
    bool add_deadline(Deadlines::iterator& where) {
        if (endpoint_.command_timeout.count() <= 0) return false;
        where = deadlines_.insert(deadlines_.end(), clock::now() + endpoint_.command_timeout);
        return true;
    }

    void arm_command_timer() {
        if (command_timer_armed_ || deadlines_.empty() || state_ != State::open) return;
        command_timer_armed_ = true;
        command_timer_.expires_at(deadlines_.front());
        command_timer_.async_wait([weak = weak_from_this()](const std::error_code&) {
            if (auto self = weak.lock()) self->on_command_timer();
        });
    }

    void on_command_timer() {
        command_timer_armed_ = false;
        if (state_ != State::open || deadlines_.empty()) return;
        if (deadlines_.front() <= clock::now()) {
            last_error_ = "no reply from Redis within command_timeout";
            return shut(make_error_code(redis_error::command_timeout));
        }
        arm_command_timer();
    }

    void on_connect_timeout() {
        if (state_ != State::connecting) return;
        last_error_ = "no working connection to Redis within connect_timeout";
        shut(make_error_code(redis_error::connect_timeout));
    }

    // ---- I/O readiness (hiredis's ev hooks) --------------------------------------

    static void ev_add_read(void* data) {
        auto* self = static_cast<RedisConnection*>(data);
        self->want_read_ = true;
        self->start_wait(true);
    }
    static void ev_del_read(void* data) { static_cast<RedisConnection*>(data)->want_read_ = false; }
    static void ev_add_write(void* data) {
        auto* self = static_cast<RedisConnection*>(data);
        self->want_write_ = true;
        self->start_wait(false);
    }
    static void ev_del_write(void* data) { static_cast<RedisConnection*>(data)->want_write_ = false; }

    // hiredis is about to free the context (its own doing or redisAsyncFree):
    // stop watching the fd without closing it, and forget the context. Waits
    // still in flight complete later as no-ops (they find ctx_ null).
    static void ev_cleanup(void* data) {
        auto* self = static_cast<RedisConnection*>(data);
        const redisAsyncContext* ac = self->ctx_;
        if (ac != nullptr && ac->c.err != 0 && self->lost_reason_.value() == 0) {
            self->lost_reason_ = error_from_hiredis(ac->c.err, ac->c.errstr);
            self->last_error_ = ac->c.errstr;
        }
        self->want_read_ = false;
        self->want_write_ = false;
        if (self->socket_.is_open()) (void)self->socket_.release();
        self->ctx_ = nullptr;
    }

    // One wait per direction at a time; a wait that completes when hiredis no
    // longer wants that direction is dropped.
    void start_wait(bool read) {
        bool& in_flight = read ? read_wait_in_flight_ : write_wait_in_flight_;
        if (in_flight || !socket_.is_open()) return;
        in_flight = true;
        using Descriptor = asio::posix::stream_descriptor;
        socket_.async_wait(read ? Descriptor::wait_read : Descriptor::wait_write,
                           [weak = weak_from_this(), read](const std::error_code& ec) {
                               if (auto self = weak.lock()) self->on_ready(read, ec, self);
                           });
    }

    void on_ready(bool read, const std::error_code& ec, const std::shared_ptr<RedisConnection>& self) {
        (read ? read_wait_in_flight_ : write_wait_in_flight_) = false;
        if (ctx_ == nullptr) return;  // the context is gone; this wait outlived it
        if (ec) {
            if (ec == asio::error::operation_aborted) return;
            last_error_ = ec.message();
            return shut(ec);
        }
        if (!(read ? want_read_ : want_write_)) return;
        call_hiredis(read, self);
    }

    // True once a handler called from inside hiredis dropped the last shared_ptr:
    // only the completion handler driving hiredis still holds one, and the
    // connection dies when it returns. No handler is called from then on.
    bool abandoned() const noexcept { return driver_ != nullptr && driver_->use_count() == 1; }

    // Runs hiredis's read or write handling; whatever a callback asked for that
    // hiredis must not see under itself (close, a failed handshake) and whatever
    // hiredis did to itself (freed the context) is finished here, after it returned.
    void call_hiredis(bool read, const std::shared_ptr<RedisConnection>& self) {
        in_hiredis_ = true;
        driver_ = &self;
        if (read) {
            redisAsyncHandleRead(ctx_);
        } else {
            SigpipeGuard guard;
            redisAsyncHandleWrite(ctx_);
        }
        driver_ = nullptr;
        in_hiredis_ = false;

        if (ctx_ == nullptr) {
            // hiredis freed the context: connect failed, EOF, I/O or protocol error.
            const std::error_code reason =
                lost_reason_.value() != 0 ? lost_reason_ : make_error_code(redis_error::closed_by_server);
            shut(failure_.value() != 0 ? failure_ : reason);
        } else if (failure_.value() != 0) {
            shut(failure_);
        } else if (close_requested_) {
            shut(make_error_code(asio::error::operation_aborted));
        }
        if (ctx_ != nullptr) {
            // hiredis expects level-triggered, persistent interest (like libev's
            // ev_io_start); our waits are one-shot, so renew what it still wants.
            if (want_read_) start_wait(true);
            if (want_write_) start_wait(false);
        }
        if (thrown_) {
            auto thrown = std::move(thrown_);
            thrown_ = nullptr;
            std::rethrow_exception(thrown);
        }
    }

    // ---- hiredis callbacks ---------------------------------------------------------
    // They run inside hiredis: no exception may cross them, and nothing here frees
    // the context.

    template <class F>
    void guarded(F&& f) noexcept {
        try {
            f();
        } catch (...) {
            if (!thrown_) thrown_ = std::current_exception();
        }
    }

    static void on_connect(const redisAsyncContext* ac, int status) {
        RedisConnection* self = owner(ac);
        if (self->state_ != State::connecting) return;
        if (status != REDIS_OK) {
            // hiredis frees the context right after this; call_hiredis reports it.
            self->lost_reason_ = error_from_hiredis(ac->c.err, ac->c.errstr);
            self->last_error_ = ac->c.errstr;
            return;
        }
        self->guarded([self] { self->send_handshake(); });
    }

    void send_handshake() {
        auto step = [this](std::vector<std::string> args, Step which) {
            if (!send(nullptr, args, &RedisConnection::on_handshake_reply,
                      reinterpret_cast<void*>(static_cast<std::uintptr_t>(which)))) {
                failure_ = make_error_code(redis_error::bad_command);
                return;
            }
            ++handshake_left_;
        };
        if (!endpoint_.password.empty()) step({"AUTH", endpoint_.password}, Step::auth);
        if (endpoint_.db != 0) step({"SELECT", std::to_string(endpoint_.db)}, Step::select);
        if (handshake_left_ == 0 && failure_.value() == 0) step({"PING"}, Step::ping);
    }

    static void on_handshake_reply(redisAsyncContext* ac, void* r, void* privdata) {
        RedisConnection* self = owner(ac);
        const auto* reply = static_cast<const redisReply*>(r);
        if (reply == nullptr || self->state_ != State::connecting || self->failure_.value() != 0 ||
            self->close_requested_) {
            return;  // the connection is going away already
        }
        const auto which = static_cast<Step>(reinterpret_cast<std::uintptr_t>(privdata));
        self->guarded([self, reply, which] {
            if (reply->type == REDIS_REPLY_ERROR) {
                self->last_error_.assign(reply->str, reply->len);
                const bool auth = which == Step::auth || self->last_error_.rfind("NOAUTH", 0) == 0 ||
                                  self->last_error_.rfind("WRONGPASS", 0) == 0;
                self->failure_ = make_error_code(auth                   ? redis_error::auth_failed
                                                 : which == Step::select ? redis_error::select_failed
                                                                         : redis_error::handshake_failed);
                return;
            }
            if (--self->handshake_left_ > 0) return;
            self->state_ = State::open;
            self->connect_timer_.cancel();
            self->last_error_.clear();
            self->post_result(std::move(self->connect_done_), {});
            self->connect_done_ = nullptr;
        });
    }

    static void on_reply(redisAsyncContext* ac, void* r, void* privdata) {
        RedisConnection* self = owner(ac);
        std::unique_ptr<Pending> pending(static_cast<Pending*>(privdata));
        if (pending->has_deadline) self->deadlines_.erase(pending->deadline);
        --self->pending_count_;
        const auto* reply = static_cast<const redisReply*>(r);
        if (reply == nullptr || self->state_ != State::open || self->close_requested_ ||
            self->failure_.value() != 0 || self->abandoned()) {
            // No reply (hiredis is freeing the context), or the user closed while
            // hiredis still had replies in its buffer: the handler hears the reason
            // once the teardown knows it.
            self->guarded([&] { self->aborted_.push_back(std::move(pending->handler)); });
            return;
        }
        self->guarded([&] {
            if (pending->handler) pending->handler(std::error_code{}, reply);
        });
    }

    static void on_push(redisAsyncContext* ac, void* r, void* /*privdata*/) {
        RedisConnection* self = owner(ac);
        const auto* reply = static_cast<const redisReply*>(r);
        // No reply: hiredis is freeing the context and calls this once per channel.
        if (reply == nullptr || self->state_ != State::open || self->close_requested_ ||
            self->failure_.value() != 0 || self->abandoned()) {
            return;
        }
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
            reply->element[0]->type == REDIS_REPLY_STRING && reply->element[0]->len == 9 &&
            std::memcmp(reply->element[0]->str, "subscribe", 9) == 0) {
            self->confirm_subscribe();
        }
        // A copy of the pointer: the handler may replace itself.
        const auto handler = self->push_handler_;
        if (handler && *handler) self->guarded([&] { (*handler)(reply); });
    }

    void confirm_subscribe() {
        if (subscribe_waits_.empty()) return;
        SubscribeWait& front = subscribe_waits_.front();
        if (--front.remaining > 0) return;
        if (front.has_deadline) deadlines_.erase(front.deadline);
        subscribe_waits_.pop_front();
    }

    // ---- teardown ------------------------------------------------------------------

    // Ends the connection with `reason`, freeing the context if hiredis has not.
    // Never called with hiredis on the stack.
    void shut(std::error_code reason) {
        if (state_ == State::closed || state_ == State::idle) return;
        const State was = state_;
        state_ = State::closed;
        connect_timer_.cancel();
        command_timer_.cancel();
        // hiredis calls every pending callback with no reply (collected into
        // aborted_), then ev_cleanup, then closes the fd.
        if (ctx_ != nullptr) redisAsyncFree(ctx_);
        deadlines_.clear();
        subscribe_waits_.clear();
        pending_count_ = 0;
        if (reason != asio::error::operation_aborted && last_error_.empty()) last_error_ = reason.message();

        auto aborted = std::move(aborted_);
        aborted_.clear();
        auto disconnect = std::move(disconnect_handler_);
        disconnect_handler_ = nullptr;
        push_handler_.reset();  // no handler outlives the connection's use: breaks cycles too
        if (was == State::open) {
            ended_ = true;
            end_reason_ = reason;
        }
        if (was == State::connecting) {
            auto done = std::move(connect_done_);
            connect_done_ = nullptr;
            post_result(std::move(done), reason);  // no command can be pending while connecting
            return;
        }
        if (aborted.empty() && !disconnect) return;
        asio::post(executor_, [aborted = std::move(aborted), disconnect = std::move(disconnect), reason] {
            for (const auto& handler : aborted) {
                if (handler) handler(reason, nullptr);
            }
            if (disconnect) disconnect(reason);
        });
    }

    asio::any_io_executor executor_;
    RedisEndpoint endpoint_;
    asio::posix::stream_descriptor socket_;  // watches hiredis's fd; released, never closed
    asio::steady_timer connect_timer_;
    asio::steady_timer command_timer_;

    redisAsyncContext* ctx_ = nullptr;  // null before connect() and once hiredis has freed it
    State state_ = State::idle;
    bool ever_started_ = false;
    bool in_hiredis_ = false;       // inside redisAsyncHandleRead/Write: hiredis must not be freed now
    const std::shared_ptr<RedisConnection>* driver_ = nullptr;  // the reference held while hiredis runs
    bool close_requested_ = false;  // close() while in_hiredis_
    std::error_code failure_;       // a handshake failure noticed while in_hiredis_
    std::error_code lost_reason_;   // why hiredis freed the context itself
    std::exception_ptr thrown_;     // a handler's exception, rethrown once hiredis returned
    std::string last_error_;
    bool ended_ = false;         // an established connection ended, with end_reason_
    std::error_code end_reason_;

    bool want_read_ = false;
    bool want_write_ = false;
    bool read_wait_in_flight_ = false;
    bool write_wait_in_flight_ = false;
    bool command_timer_armed_ = false;
    int handshake_left_ = 0;

    std::function<void(std::error_code)> connect_done_;
    std::function<void(std::error_code)> disconnect_handler_;
    std::shared_ptr<std::function<void(Reply)>> push_handler_;
    std::vector<ReplyHandler> aborted_;  // handlers of commands that will get the teardown's reason

    Deadlines deadlines_;  // send order
    std::deque<SubscribeWait> subscribe_waits_;
    std::size_t pending_count_ = 0;

    std::vector<const char*> argv_;  // reused: no allocation per command once warm
    std::vector<std::size_t> argv_len_;
};

}  // namespace wshub::detail
