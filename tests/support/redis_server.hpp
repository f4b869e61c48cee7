// tests/support/redis_server.hpp: a real redis-server for tests, and a small
// synchronous client to check what it holds.
//
// `RedisServer server;` starts `redis-server --port <free port> --save ""
// --appendonly no --bind 127.0.0.1` (plus extra arguments) in a temp dir, waits
// until it answers (20 s deadline, polled every few ms) and stops it in the
// destructor (SIGTERM, then SIGKILL if it lingers). Tests can kill it (-9),
// freeze it (SIGSTOP/SIGCONT) and start it again on the same port. cli() talks
// to it through its own short-lived hiredis connection (not redis-cli), for
// assertions such as `PUBSUB CHANNELS` or `INFO commandstats`.
//
// Thread safety: none; one test thread owns a RedisServer.
#pragma once

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

extern char** environ;

namespace wshub::test {

struct RedisServerOptions {
    std::vector<std::string> extra_args;  // after the defaults, e.g. {"--requirepass", "s3cret"}
    bool unix_socket = false;             // also listen on unix_socket_path(), in the temp dir
};

// A reply of the synchronous client, copied out of hiredis.
struct CliReply {
    int type = REDIS_REPLY_NIL;  // REDIS_REPLY_STRING, _STATUS, _ERROR, _INTEGER, _NIL or _ARRAY
    std::string str;             // string, status and error text; an integer in decimal
    long long integer = 0;
    std::vector<CliReply> elements;

    bool is_error() const { return type == REDIS_REPLY_ERROR; }

    // The array's elements as strings (an element that is not a string: its str).
    std::vector<std::string> strings() const {
        std::vector<std::string> out;
        out.reserve(elements.size());
        for (const auto& e : elements) out.push_back(e.str);
        return out;
    }
};

inline CliReply copy_reply(const redisReply* r) {
    CliReply out;
    if (r == nullptr) return out;
    out.type = r->type;
    switch (r->type) {
        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
        case REDIS_REPLY_ERROR: out.str.assign(r->str, r->len); break;
        case REDIS_REPLY_INTEGER:
            out.integer = r->integer;
            out.str = std::to_string(r->integer);
            break;
        case REDIS_REPLY_ARRAY:
            for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(copy_reply(r->element[i]));
            break;
        default: break;
    }
    return out;
}

class RedisServer {
public:
    RedisServer() : RedisServer(RedisServerOptions{}) {}
    explicit RedisServer(std::vector<std::string> extra_args)
        : RedisServer(RedisServerOptions{std::move(extra_args), false}) {}
    explicit RedisServer(RedisServerOptions options) : options_(std::move(options)) {
        for (std::size_t i = 0; i + 1 < options_.extra_args.size(); ++i) {
            if (options_.extra_args[i] == "--requirepass") password_ = options_.extra_args[i + 1];
        }
        std::string pattern = (std::filesystem::temp_directory_path() / "wshub-redis-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
        }
        dir_ = pattern;
        if (options_.unix_socket) unix_socket_path_ = dir_ + "/redis.sock";
        try {
            start(true);
        } catch (...) {
            remove_dir();
            throw;
        }
    }

    ~RedisServer() {
        stop();
        remove_dir();
    }

    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    int port() const { return port_; }
    pid_t pid() const { return pid_; }
    bool running() const { return pid_ > 0; }
    const std::string& dir() const { return dir_; }
    const std::string& unix_socket_path() const { return unix_socket_path_; }
    const std::string& password() const { return password_; }

    // SIGKILL, and reap: the server is gone when this returns.
    void kill9() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        reap_blocking();
    }

    // SIGSTOP, returning once the process is stopped: it still completes TCP
    // handshakes (the kernel does) but answers nothing.
    void stop_process() {
        if (pid_ <= 0 || stopped_) return;
        ::kill(pid_, SIGSTOP);
        int status = 0;
        while (waitpid(pid_, &status, WUNTRACED) == -1 && errno == EINTR) {
        }
        stopped_ = true;
    }

    // SIGCONT, returning once the process runs again.
    void cont_process() {
        if (pid_ <= 0 || !stopped_) return;
        ::kill(pid_, SIGCONT);
        int status = 0;
        while (waitpid(pid_, &status, WCONTINUED) == -1 && errno == EINTR) {
        }
        stopped_ = false;
    }

    // Starts the server again on the same port (after kill9() or stop()).
    void restart() {
        if (pid_ > 0) stop();
        start(false);
    }

    // SIGTERM, wait up to 10 s, then SIGKILL. Also what the destructor does.
    void stop() {
        if (pid_ <= 0) return;
        if (stopped_) ::kill(pid_, SIGCONT);  // a stopped process would sit on the SIGTERM
        stopped_ = false;
        ::kill(pid_, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            const pid_t r = waitpid(pid_, &status, WNOHANG);
            if (r == pid_ || (r == -1 && errno == ECHILD)) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        ::kill(pid_, SIGKILL);
        reap_blocking();
    }

    // One command through a fresh synchronous connection (AUTH first when the
    // server has a password). Throws when the server cannot be reached within 5 s.
    CliReply cli_argv(const std::vector<std::string>& args) const {
        Context c = open_context();
        return command(c.get(), args);
    }

    // The reply as one string: the text of a string, status or error, an integer
    // in decimal, "" for nil, an array's elements joined with '\n'.
    template <class... Args>
    std::string cli(const Args&... args) const {
        const CliReply reply = cli_argv({std::string(args)...});
        if (reply.type != REDIS_REPLY_ARRAY) return reply.str;
        std::string joined;
        for (std::size_t i = 0; i < reply.elements.size(); ++i) {
            if (i > 0) joined += '\n';
            joined += reply.elements[i].str;
        }
        return joined;
    }

    // The reply's elements (an array reply: PUBSUB CHANNELS, KEYS, ...).
    template <class... Args>
    std::vector<std::string> cli_list(const Args&... args) const {
        return cli_argv({std::string(args)...}).strings();
    }

    // A line of INFO, e.g. info_field("commandstats", "cmdstat_subscribe") ->
    // "calls=1,usec=...". Empty when absent.
    std::string info_field(const std::string& section, const std::string& key) const {
        std::istringstream in(cli("INFO", section));
        std::string line;
        while (std::getline(in, line)) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
        }
        return {};
    }

    // The server's log so far (for failure messages).
    std::string log() const {
        std::ifstream in(dir_ + "/redis.log");
        std::ostringstream out;
        out << in.rdbuf();
        return out.str();
    }

    // A TCP port that was free a moment ago on 127.0.0.1.
    static int free_port() {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        socklen_t len = sizeof(addr);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            const std::string why = std::strerror(errno);
            ::close(fd);
            throw std::runtime_error("cannot find a free port: " + why);
        }
        ::close(fd);
        return ntohs(addr.sin_port);
    }

private:
    struct ContextDeleter {
        void operator()(redisContext* c) const { redisFree(c); }
    };
    using Context = std::unique_ptr<redisContext, ContextDeleter>;

    static timeval to_timeval(std::chrono::milliseconds ms) {
        timeval tv{};
        tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
        tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
        return tv;
    }

    static CliReply command(redisContext* c, const std::vector<std::string>& args) {
        std::vector<const char*> argv;
        std::vector<std::size_t> lens;
        for (const auto& a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        auto* reply = static_cast<redisReply*>(
            redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
        if (reply == nullptr) throw std::runtime_error(std::string("redis cli: ") + c->errstr);
        CliReply out = copy_reply(reply);
        freeReplyObject(reply);
        return out;
    }

    Context open_context(std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
        Context c(redisConnectWithTimeout("127.0.0.1", port_, to_timeval(timeout)));
        if (!c || c->err != 0) {
            throw std::runtime_error("redis cli: cannot connect to port " + std::to_string(port_) + ": " +
                                     (c ? c->errstr : "out of memory"));
        }
        redisSetTimeout(c.get(), to_timeval(timeout));
        if (!password_.empty()) {
            const CliReply auth = command(c.get(), {"AUTH", password_});
            if (auth.is_error()) throw std::runtime_error("redis cli: AUTH: " + auth.str);
        }
        return c;
    }

    void start(bool may_change_port) {
        for (int attempt = 0; attempt < 8; ++attempt) {
            if (may_change_port || port_ == 0) port_ = free_port();
            spawn();
            const Ready ready = wait_ready();
            if (ready == Ready::yes) return;
            const std::string text = log();
            if (pid_ > 0) {
                ::kill(pid_, SIGKILL);
                reap_blocking();
            }
            const bool port_taken = text.find("Address already in use") != std::string::npos;
            if (!(port_taken && may_change_port)) {
                throw std::runtime_error(std::string("redis-server did not start") +
                                         (ready == Ready::timed_out ? " within 20 s" : "") + "; its log:\n" + text);
            }
        }
        throw std::runtime_error("redis-server: no free port after 8 attempts");
    }

    void spawn() {
        std::vector<std::string> args = {"redis-server",  "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                         "--save",        "",       "--appendonly",        "no",     "--dir",
                                         dir_,            "--daemonize", "no"};
        if (!unix_socket_path_.empty()) {
            args.insert(args.end(), {"--unixsocket", unix_socket_path_, "--unixsocketperm", "700"});
        }
        args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);

        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        const std::string log_path = dir_ + "/redis.log";
        posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        // The server must not inherit the test's sockets (a connection it held
        // open would outlive the test's close).
        posix_spawn_file_actions_addclosefrom_np(&actions, 3);

        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        sigset_t none;
        sigemptyset(&none);
        sigset_t defaults;
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGPIPE);
        sigaddset(&defaults, SIGTERM);
        sigaddset(&defaults, SIGINT);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

        pid_t pid = -1;
        const int rc = posix_spawnp(&pid, "redis-server", &actions, &attr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
        if (rc != 0) throw std::runtime_error("cannot start redis-server: " + std::string(std::strerror(rc)));
        pid_ = pid;
        stopped_ = false;
    }

    enum class Ready { yes, exited, timed_out };

    // Polls until this very process answers (INFO's process_id: another server
    // could hold the port if ours failed to bind it).
    Ready wait_ready() {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        const std::string expected = "process_id:" + std::to_string(pid_) + "\r\n";
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return Ready::exited;
            }
            try {
                Context c = open_context(std::chrono::milliseconds(200));
                const CliReply info = command(c.get(), {"INFO", "server"});
                if (info.str.find(expected) != std::string::npos) return Ready::yes;
            } catch (const std::exception&) {
                // not listening yet
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(3));
        }
        return Ready::timed_out;
    }

    void reap_blocking() {
        int status = 0;
        while (waitpid(pid_, &status, 0) == -1 && errno == EINTR) {
        }
        pid_ = -1;
        stopped_ = false;
    }

    void remove_dir() {
        std::error_code ignored;
        if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
    }

    RedisServerOptions options_;
    std::string password_;
    std::string dir_;
    std::string unix_socket_path_;
    int port_ = 0;
    pid_t pid_ = -1;
    bool stopped_ = false;
};

}  // namespace wshub::test
