// SPDX-License-Identifier: MIT
// slmd end to end: a private bus configured like the system bus with the project's own policy,
// slmd from the build tree, libslm (and raw D-Bus calls where a client would never go) talking
// to it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <strings.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <dbus/dbus.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <functional>
#include <thread>
#include <climits>
#include <cstdlib>
#include <unistd.h>

#include "../proc-status.h"
#include "slm-client.h"

namespace
{

using namespace std::chrono_literals;

std::string env(const char *name)
{
        const char *v = getenv(name);
        return v ? v : "";
}

std::string shared(const std::string &rel)
{
        return env("SLM_SHARED_DIR") + "/" + rel;
}

const std::string kStory = "models/stories260K-f32.gguf";

pid_t spawn(const std::vector<std::string> &args, const std::string &log = "")
{
        pid_t pid = fork();
        if (pid == 0) {
                if (!log.empty()) {
                        int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                std::vector<char *> argv;
                for (const auto &a : args)
                        argv.push_back(const_cast<char *>(a.c_str()));
                argv.push_back(nullptr);
                execvp(argv[0], argv.data());
                _exit(127);
        }
        return pid;
}

int wait_exit(pid_t pid)
{
        int st = 0;
        waitpid(pid, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Run a command line, return its exit status and output.
int run_cmd(const std::string &cmd, std::string *out = nullptr)
{
        FILE *p = popen((cmd + " 2>&1").c_str(), "r");
        std::string s;
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
                s.append(buf, n);
        int st = pclose(p);
        if (out)
                *out = s;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

template <typename F> bool eventually(F f, std::chrono::milliseconds limit = 10s)
{
        auto end = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < end) {
                if (f())
                        return true;
                std::this_thread::sleep_for(20ms);
        }
        return f();
}

class Daemon : public ::testing::Test
{
      protected:
        std::string dir, address, state;
        pid_t bus_pid = -1, slmd_pid = -1;

        void SetUp() override
        {
                char tmpl[] = "/tmp/slmd-test-XXXXXX";
                ASSERT_NE(mkdtemp(tmpl), nullptr);
                dir = tmpl;
                chmod(dir.c_str(), 0755); // another user must reach the bus socket
                state = dir + "/state";
                address = "unix:path=" + dir + "/bus";
                std::string conf;
                run_cmd("sed 's|__LISTEN__|" + address + "|' '" + env("SLMD_BUS_CONF") + "' > '" +
                            dir + "/bus.conf'",
                        &conf);
                bus_pid = spawn({ "dbus-daemon", "--nofork", "--config-file=" + dir + "/bus.conf" },
                                dir + "/bus.log");
                ASSERT_TRUE(eventually([&] { return access((dir + "/bus").c_str(), F_OK) == 0; }))
                    << "the test bus did not start";
        }

        void TearDown() override
        {
                if (slmd_pid > 0)
                        stop();
                if (bus_pid > 0) {
                        kill(bus_pid, SIGTERM);
                        wait_exit(bus_pid);
                }
                run_cmd("rm -rf '" + dir + "'");
        }

        void start(const std::string &model = "", const std::vector<std::string> &extra = {})
        {
                std::vector<std::string> args = { env("SLMD"), "--address", address, "--state-dir",
                                                  state,       "--threads", "2" };
                args.insert(args.end(), extra.begin(), extra.end());
                if (!model.empty()) {
                        args.push_back("--model");
                        args.push_back(model);
                }
                slmd_pid = spawn(args, dir + "/slmd.log");
                ASSERT_TRUE(eventually([&] {
                        SlmClient *c = nullptr;
                        SlmDaemonStatus st;
                        bool ok = slm_client_connect_address(address.c_str(), &c, nullptr) == 0 &&
                                  slm_client_status(c, &st, nullptr) == 0;
                        if (ok)
                                slm_daemon_status_clear(&st);
                        slm_client_free(c);
                        return ok;
                })) << "slmd did not come up; its log:\n"
                    << log();
        }

        // SIGTERM; the exit status (non-zero under the sanitizers when something leaked).
        int stop()
        {
                kill(slmd_pid, SIGTERM);
                int st = wait_exit(slmd_pid);
                slmd_pid = -1;
                return st;
        }

        std::string log()
        {
                std::string s;
                run_cmd("cat '" + dir + "/slmd.log'", &s);
                return s;
        }

        SlmClient *client()
        {
                SlmClient *c = nullptr;
                SlmClientError err;
                EXPECT_EQ(slm_client_connect_address(address.c_str(), &c, &err), 0) << err.message;
                return c;
        }

        SlmDaemonStatus status()
        {
                SlmClient *c = client();
                SlmDaemonStatus st = {};
                EXPECT_EQ(slm_client_status(c, &st, nullptr), 0);
                slm_client_free(c);
                return st;
        }

        uint32_t sessions()
        {
                SlmDaemonStatus st = status();
                uint32_t n = st.sessions;
                slm_daemon_status_clear(&st);
                return n;
        }

        std::string slmctl(const std::string &args)
        {
                return env("SLMCTL") + " --address '" + address + "' " + args;
        }
};

struct Stream {
        std::string text;
        std::atomic<int> tokens{ 0 };
        int cancel_after = -1;
        std::chrono::steady_clock::time_point first;
};

bool collect(const char *text, void *data)
{
        Stream *s = static_cast<Stream *>(data);
        if (s->tokens++ == 0)
                s->first = std::chrono::steady_clock::now();
        s->text += text;
        return s->cancel_after < 0 || s->tokens < s->cancel_after;
}

SlmGenerateOptions greedy(uint32_t n)
{
        SlmGenerateOptions o;
        slm_generate_options_init(&o);
        o.max_tokens = n;
        o.temperature = 0;
        return o;
}

// The words of a Suggest call as "w1|w2|w3|"; frees them.
std::string joined(char **words)
{
        std::string v;
        for (size_t i = 0; words && words[i]; i++)
                v += std::string(words[i]) + "|";
        slm_strv_free(words);
        return v;
}

int count_mappings(pid_t pid, const std::string &path)
{
        std::string maps;
        run_cmd("cat /proc/" + std::to_string(pid) + "/maps", &maps);
        int n = 0;
        for (size_t pos = 0; (pos = maps.find(path, pos)) != std::string::npos; pos += path.size())
                n++;
        return n;
}

// A normal session streaming a long greedy generation on a thread of its own, for the requests
// that must not wait for it; join() before the test ends.
struct BackgroundStream {
        Stream s;
        std::atomic<bool> finished{ false };
        SlmFinish fin = {};
        std::thread thread;
        BackgroundStream(const std::string &address, uint32_t n)
        {
                thread = std::thread([this, address, n] {
                        SlmClient *c = nullptr;
                        SlmSession *sess = nullptr;
                        ASSERT_EQ(slm_client_connect_address(address.c_str(), &c, nullptr), 0);
                        ASSERT_EQ(slm_client_create_session(c, nullptr, &sess, nullptr), 0);
                        SlmGenerateOptions o = greedy(n);
                        slm_session_generate(sess, "Once upon a time", &o, collect, &s, &fin,
                                             nullptr);
                        finished = true;
                        slm_session_free(sess);
                        slm_client_free(c);
                });
        }
};

// Whether @request, made while another client streams @n tokens, came back before that stream
// ended, in one of three tries. The story model streams a few hundred tokens in well under a
// second, so a loaded machine can now and then hold a client up for that long; a request that
// really waits for the stream fails every try.
template <typename F>
bool returns_while_streaming(const std::string &address, uint32_t n, F request)
{
        for (int attempt = 0; attempt < 3; attempt++) {
                BackgroundStream writer(address, n);
                bool started = eventually([&] { return writer.s.tokens > 5; });
                if (started)
                        request();
                bool overlapped = started && !writer.finished;
                writer.thread.join();
                EXPECT_STREQ(writer.fin.reason, "length");
                if (overlapped)
                        return true;
        }
        return false;
}

} // namespace

TEST_F(Daemon, ThreeClientsStreamAtOnceFromOneResidentModel)
{
        std::string model = shared(kStory);
        start(model);
        Stream s[3];
        SlmFinish fin[3] = {};
        std::chrono::steady_clock::time_point done[3];
        std::thread t[3];
        for (int i = 0; i < 3; i++)
                t[i] = std::thread([&, i] {
                        SlmClient *c = client();
                        SlmSession *sess = nullptr;
                        SlmClientError err;
                        ASSERT_EQ(slm_client_create_session(c, nullptr, &sess, &err), 0)
                            << err.message;
                        SlmGenerateOptions o = greedy(150);
                        EXPECT_EQ(slm_session_generate(sess, "Once upon a time", &o, collect, &s[i],
                                                       &fin[i], &err),
                                  0)
                            << err.message;
                        done[i] = std::chrono::steady_clock::now();
                        slm_session_free(sess);
                        slm_client_free(c);
                });
        for (auto &th : t)
                th.join();
        for (int i = 0; i < 3; i++) {
                EXPECT_STREQ(fin[i].reason, "length");
                EXPECT_EQ(fin[i].tokens, 150u);
                EXPECT_EQ(s[i].text, s[0].text); // greedy: the same story for everyone
        }
        EXPECT_EQ(s[0].text.rfind(", there was a little girl named Lily.", 0), 0u)
            << "[" << s[0].text << "]";
        // all three were streaming at the same time
        auto last_first = std::max({ s[0].first, s[1].first, s[2].first });
        auto first_done = std::min({ done[0], done[1], done[2] });
        EXPECT_LT(last_first, first_done);
        // one copy of the weights: the file is mapped once
        char real[PATH_MAX];
        ASSERT_NE(realpath(model.c_str(), real), nullptr);
        EXPECT_EQ(count_mappings(slmd_pid, real), 1);
        EXPECT_EQ(stop(), 0) << log();
}

// Streams that run together in batches give what each gives alone: different prompts, greedy and
// seeded sampling, one of them joining while the others are halfway through.
TEST_F(Daemon, BatchedStreamsGiveWhatEachGivesAlone)
{
        start(shared(kStory));
        const char *prompts[4] = { "Once upon a time", "The little dog", "Lily and Ben went to",
                                   "One day, a big" };
        std::chrono::steady_clock::time_point end[4];
        auto run = [&](int i, Stream *out, SlmFinish *fin) {
                SlmClient *c = client();
                SlmSession *sess = nullptr;
                SlmClientError err;
                ASSERT_EQ(slm_client_create_session(c, nullptr, &sess, &err), 0) << err.message;
                SlmGenerateOptions o = greedy(400);
                if (i == 1) { // seeded sampling: the same draws whatever runs beside it
                        o.temperature = 0.8;
                        o.has_seed = true;
                        o.seed = 7;
                }
                EXPECT_EQ(slm_session_generate(sess, prompts[i], &o, collect, out, fin, &err), 0)
                    << err.message;
                end[i] = std::chrono::steady_clock::now();
                slm_session_free(sess);
                slm_client_free(c);
        };
        Stream alone[4], together[4];
        SlmFinish fa[4] = {}, ft[4] = {};
        for (int i = 0; i < 4; i++)
                run(i, &alone[i], &fa[i]);
        std::thread t[4];
        for (int i = 0; i < 3; i++)
                t[i] = std::thread(run, i, &together[i], &ft[i]);
        while (together[0].tokens < 30 && !ft[0].reason[0])
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
        t[3] = std::thread(run, 3, &together[3], &ft[3]); // joins the running batch
        for (auto &th : t)
                th.join();
        for (int i = 0; i < 4; i++) {
                EXPECT_EQ(together[i].text, alone[i].text) << prompts[i];
                EXPECT_EQ(ft[i].tokens, fa[i].tokens) << prompts[i];
                EXPECT_STREQ(ft[i].reason, fa[i].reason) << prompts[i];
        }
        // the late one streamed while the first was still streaming
        EXPECT_LT(together[3].first, end[0]);
        EXPECT_EQ(stop(), 0) << log();
}

// Suggest offers whole words for the word at the cursor: the next word after a space or
// punctuation, completions of half a word (in either case), the same wherever the text was cut.
TEST_F(Daemon, SuggestCompletesTheWordBeingTyped)
{
        start(shared(kStory));
        SlmClient *kb = client();
        SlmSessionOptions so = { nullptr, "interactive", 0 };
        SlmSession *ks = nullptr;
        SlmClientError err;
        ASSERT_EQ(slm_client_create_session(kb, &so, &ks, &err), 0) << err.message;
        auto suggest = [&](const char *text) {
                char **words = nullptr;
                std::vector<std::string> v;
                EXPECT_EQ(slm_session_suggest(ks, text, 3, &words, &err), 0) << err.message;
                for (size_t i = 0; words && words[i]; i++)
                        v.push_back(words[i]);
                slm_strv_free(words);
                return v;
        };
        auto has = [](const std::vector<std::string> &v, const char *w) {
                return std::find(v.begin(), v.end(), w) != v.end();
        };
        auto starts_with = [](const std::vector<std::string> &v, const char *p) {
                for (const auto &w : v)
                        if (strncasecmp(w.c_str(), p, strlen(p)) != 0)
                                return false;
                return !v.empty();
        };
        // a trailing space is not read as a token of its own: the next word, as without it
        auto next = suggest("Once upon a time, there was a little ");
        EXPECT_TRUE(has(next, "girl")) << testing::PrintToString(next);
        EXPECT_EQ(suggest("Once upon a time, there was a little,").size(), 3u);
        // half a word: only words that begin with it
        auto gi = suggest("Once upon a time, there was a little gi");
        EXPECT_EQ(gi.at(0), "girl") << testing::PrintToString(gi);
        EXPECT_TRUE(starts_with(gi, "gi")) << testing::PrintToString(gi);
        auto li = suggest("Once upon a time, there was a little girl named Li");
        EXPECT_EQ(li.at(0), "Lily") << testing::PrintToString(li);
        EXPECT_TRUE(starts_with(li, "li"));
        auto lower = suggest("Once upon a time, there was a little girl named li");
        EXPECT_TRUE(has(lower, "Lily")) << testing::PrintToString(lower);
        // typed letter by letter: the same context each time, every candidate still fits
        for (const char *t : { "She liked to p", "She liked to pl", "She liked to pla" }) {
                std::string text = std::string("Once upon a time, there was a little girl. ") + t;
                auto v = suggest(text.c_str());
                EXPECT_TRUE(starts_with(v, strrchr(t, ' ') + 1)) << t;
        }
        // no word at all, and at the very start of a text
        EXPECT_FALSE(suggest("").empty());
        EXPECT_TRUE(starts_with(suggest("On"), "on"));
        // candidates are distinct in any case
        auto v = suggest("Once upon a time, there was a little girl. She liked to pl");
        for (size_t i = 0; i < v.size(); i++)
                for (size_t j = i + 1; j < v.size(); j++)
                        EXPECT_NE(strcasecmp(v[i].c_str(), v[j].c_str()), 0);
        slm_session_free(ks);
        slm_client_free(kb);
        EXPECT_EQ(stop(), 0) << log();
}

// Typing a text letter by letter, Suggest reuses what it made of the same context's candidates
// at the keystrokes before; the words are those a session that never saw the earlier
// keystrokes gives (one whose last text was another, so that nothing is kept).
TEST_F(Daemon, SuggestWhileTypingGivesWhatAFreshCallGives)
{
        start(shared(kStory));
        SlmClient *kb = client();
        SlmSession *typing = nullptr, *fresh = nullptr;
        SlmClientError err;
        ASSERT_EQ(slm_client_create_session(kb, nullptr, &typing, &err), 0) << err.message;
        ASSERT_EQ(slm_client_create_session(kb, nullptr, &fresh, &err), 0) << err.message;
        auto suggest = [&](SlmSession *s, const std::string &text) {
                char **words = nullptr;
                EXPECT_EQ(slm_session_suggest(s, text.c_str(), 3, &words, &err), 0) << err.message;
                return joined(words);
        };
        const std::string text = "Once upon a time, there was a little girl named Lily. She liked "
                                 "to play with her Ball in the park";
        int words = 0;
        for (size_t n = 1; n <= text.size(); n++) {
                std::string typed = text.substr(0, n);
                std::string got = suggest(typing, typed);
                suggest(fresh, "A dog"); // another context: nothing of typed is kept
                std::string want = suggest(fresh, typed);
                EXPECT_EQ(got, want) << "after \"" << typed << "\"";
                words += !got.empty();
        }
        EXPECT_EQ(words, (int)text.size());
        slm_session_free(typing);
        slm_session_free(fresh);
        slm_client_free(kb);
        EXPECT_EQ(stop(), 0) << log();
}

TEST_F(Daemon, KeyboardSuggestionWhileAnotherClientStreams)
{
        start(shared(kStory));
        SlmClient *kb = client();
        SlmSessionOptions so = { nullptr, "interactive", 0 };
        SlmSession *ks = nullptr;
        char **words = nullptr;
        SlmClientError err;
        ASSERT_EQ(slm_client_create_session(kb, &so, &ks, &err), 0) << err.message;
        EXPECT_TRUE(returns_while_streaming(address, 400, [&] {
                ASSERT_EQ(slm_session_suggest(ks, "Once upon a ", 3, &words, &err), 0)
                    << err.message;
                ASSERT_NE(words[0], nullptr);
                EXPECT_STREQ(words[0], "time");
                slm_strv_free(words);
        })) << "the suggestion waited for the whole generation";
        // the keyboard's next request reuses its context: only the new word is processed
        ASSERT_EQ(slm_session_suggest(ks, "Once upon a time, there", 3, &words, &err), 0);
        ASSERT_NE(words[0], nullptr);
        slm_strv_free(words);
        slm_session_free(ks);
        slm_client_free(kb);
}

// Found by tests/fuzz/dbus-fuzz on the Vulkan backend: a background session's Reset, and a
// closed background session's freeing, waited in the background class for as long as normal
// work went on. Control requests take no time; they wait for no class.
TEST_F(Daemon, ControlRequestsOfBackgroundSessionsDoNotWait)
{
        start(shared(kStory));
        SlmClient *c = client();
        SlmSessionOptions bg = { nullptr, "background", 0 };
        SlmSession *b = nullptr;
        SlmClientError err;
        ASSERT_EQ(slm_client_create_session(c, &bg, &b, &err), 0) << err.message;
        EXPECT_TRUE(returns_while_streaming(address, 450, [&] {
                EXPECT_EQ(slm_session_reset(b, &err), 0) << err.message;
        })) << "the reset waited for the whole generation";
        slm_session_free(b);
        slm_client_free(c);
}

TEST_F(Daemon, CancelMidStream)
{
        start(shared(kStory));
        SlmClient *c = client();
        SlmSession *sess = nullptr;
        ASSERT_EQ(slm_client_create_session(c, nullptr, &sess, nullptr), 0);
        SlmFinish fin;
        SlmGenerateOptions o = greedy(400);
        // the cancel can come too late where the machine holds the client up for the whole
        // stream (well under a second): up to three tries
        for (int attempt = 0; attempt < 3; attempt++) {
                Stream s;
                s.cancel_after = 5;
                ASSERT_EQ(slm_session_reset(sess, nullptr), 0);
                ASSERT_EQ(
                    slm_session_generate(sess, "Once upon a time", &o, collect, &s, &fin, nullptr),
                    0);
                if (strcmp(fin.reason, "cancelled") == 0)
                        break;
                EXPECT_STREQ(fin.reason, "length");
        }
        EXPECT_STREQ(fin.reason, "cancelled");
        EXPECT_GE(fin.tokens, 5u);
        EXPECT_LT(fin.tokens, 400u);
        // the session goes on working after a cancel
        Stream s2;
        o = greedy(10);
        ASSERT_EQ(slm_session_generate(sess, " The end.", &o, collect, &s2, &fin, nullptr), 0);
        EXPECT_STREQ(fin.reason, "length");
        slm_session_free(sess);
        slm_client_free(c);
}

namespace
{

std::string story(SlmClient *c, uint32_t n)
{
        SlmSession *sess = nullptr;
        Stream s;
        SlmFinish fin;
        SlmGenerateOptions o = greedy(n);
        EXPECT_EQ(slm_client_create_session(c, nullptr, &sess, nullptr), 0);
        EXPECT_EQ(slm_session_generate(sess, "Once upon a time", &o, collect, &s, &fin, nullptr),
                  0);
        slm_session_free(sess);
        return s.text;
}

} // namespace

// The service on the Vulkan backend tells the same story as on the CPU; with no usable Vulkan
// device it runs on the CPU and says so in its status. Every run holds its KV caches in F32, so
// the stories must agree byte for byte.
TEST_F(Daemon, VulkanBackendAndItsFallback)
{
        start(shared(kStory), { "--backend", "cpu", "--kv-type", "f32" });
        SlmClient *c = client();
        std::string want = story(c, 60);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();
        EXPECT_GT(want.size(), 100u);

        start(shared(kStory), { "--backend", "vulkan" });
        SlmDaemonStatus st = status();
        EXPECT_EQ(std::string(st.backend).rfind("vulkan (", 0), 0u) << st.backend;
        slm_daemon_status_clear(&st);
        c = client();
        EXPECT_EQ(story(c, 60), want);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();

        setenv("VK_ICD_FILENAMES", "/nonexistent/icd.json", 1); // the loader finds no driver
        start(shared(kStory), { "--backend", "vulkan", "--kv-type", "f32" });
        unsetenv("VK_ICD_FILENAMES");
        st = status();
        std::string backend = st.backend;
        slm_daemon_status_clear(&st);
        EXPECT_EQ(backend.rfind("cpu (", 0), 0u) << backend;
        EXPECT_NE(backend.find("vulkan: no usable device"), std::string::npos) << backend;
        c = client();
        EXPECT_EQ(story(c, 60), want);
        slm_client_free(c);
        std::string out;
        EXPECT_EQ(run_cmd(slmctl("status"), &out), 0);
        EXPECT_NE(out.find("vulkan: no usable device"), std::string::npos) << out;
}

// KV caches in F16 unless told otherwise; q8_0 where the model's heads are not whole Q8_0 blocks
// (the story model's are 8 wide) falls back to F16 and says so; a type that is not one is refused.
TEST_F(Daemon, KvCacheType)
{
        start(shared(kStory));
        SlmDaemonStatus st = status();
        EXPECT_NE(std::string(st.backend).find("KV cache F16"), std::string::npos) << st.backend;
        slm_daemon_status_clear(&st);
        SlmClient *c = client();
        std::string f16 = story(c, 30);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();
        EXPECT_GT(f16.size(), 50u);

        start(shared(kStory), { "--kv-type", "q8_0" });
        st = status();
        EXPECT_NE(std::string(st.backend).find("KV cache Q8_0"), std::string::npos) << st.backend;
        slm_daemon_status_clear(&st);
        c = client();
        EXPECT_EQ(story(c, 30), f16);
        slm_client_free(c);
        EXPECT_NE(log().find("KV cache in F16: this model or backend cannot hold Q8_0"),
                  std::string::npos)
            << log();
        EXPECT_EQ(stop(), 0) << log();

        std::string out;
        EXPECT_EQ(run_cmd(env("SLMD") + " --session --kv-type q4_0", &out), 2);
        EXPECT_NE(out.find("--kv-type is f16, q8_0 or f32, not 'q4_0'"), std::string::npos) << out;
        std::string conf = dir + "/bad-kv.conf";
        FILE *f = fopen(conf.c_str(), "w");
        ASSERT_NE(f, nullptr);
        fputs("[daemon]\nkv-type=bf16\n", f);
        fclose(f);
        EXPECT_EQ(run_cmd(env("SLMD") + " --session --config " + conf, &out), 2);
        EXPECT_NE(out.find("kv-type is f16, q8_0 or f32, not 'bf16'"), std::string::npos) << out;
}

TEST_F(Daemon, KilledClientLeavesNoSessionBehind)
{
        start(shared(kStory));
        pid_t child = spawn({ env("SLMCTL"), "--address", address, "run", "--default",
                              "Once upon a time", "-n", "400" },
                            dir + "/child.log");
        ASSERT_TRUE(eventually([&] { return sessions() == 1; }));
        kill(child, SIGKILL);
        wait_exit(child);
        EXPECT_TRUE(eventually([&] { return sessions() == 0; }))
            << "the session outlived its owner";
        // and the daemon serves the next client
        EXPECT_EQ(run_cmd(slmctl("run --default 'Once' -n 5")), 0);
        EXPECT_EQ(stop(), 0) << log();
}

TEST_F(Daemon, OtherUserCannotManageModelsOrUseSessions)
{
        if (geteuid() != 0 || run_cmd("command -v runuser") != 0)
                GTEST_SKIP() << "needs root and runuser to act as a second user";
        start();
        std::string out;
        std::string as_nobody = "runuser -u nobody -- ";
        ASSERT_EQ(run_cmd(slmctl("import '" + shared(kStory) + "' --name story"), &out), 0) << out;
        // another user may list and use the model...
        EXPECT_EQ(run_cmd(as_nobody + slmctl("list"), &out), 0) << out;
        EXPECT_NE(out.find("story"), std::string::npos);
        EXPECT_EQ(run_cmd(as_nobody + slmctl("run --default 'Once' -n 3"), &out), 0) << out;
        // ...but not manage models
        EXPECT_EQ(run_cmd(as_nobody + slmctl("import '" + shared("models/stories260K-f16.gguf") +
                                             "' --name other"),
                          &out),
                  4)
            << out;
        EXPECT_NE(out.find("manage models"), std::string::npos) << out;
        EXPECT_EQ(run_cmd(as_nobody + slmctl("rm story --force"), &out), 4) << out;
        EXPECT_EQ(run_cmd(as_nobody + slmctl("unload"), &out), 4) << out;
        // nor call a session it does not own
        SlmClient *c = client();
        SlmSession *sess = nullptr;
        ASSERT_EQ(slm_client_create_session(c, nullptr, &sess, nullptr), 0);
        EXPECT_NE(run_cmd(as_nobody + "dbus-send --bus='" + address +
                              "' --print-reply --dest=org.slmd.Slm1 " + slm_session_path(sess) +
                              " org.slmd.Slm1.Session.Reset",
                          &out),
                  0);
        EXPECT_NE(out.find("org.slmd.Slm1.Error.PermissionDenied"), std::string::npos) << out;
        // nor own the service's name on this bus
        EXPECT_NE(run_cmd(as_nobody + env("SLMD") + " --address '" + address + "' --state-dir '" +
                              dir + "/other'",
                          &out),
                  0);
        slm_session_free(sess);
        slm_client_free(c);
        SlmModelInfo *m;
        size_t n;
        c = client();
        ASSERT_EQ(slm_client_list_models(c, &m, &n, nullptr), 0);
        EXPECT_EQ(n, 1u); // the store is as root left it
        slm_model_info_free(m, n);
        slm_client_free(c);
}

TEST_F(Daemon, RestartKeepsTheStoreAndInterruptedImportsLeaveNothing)
{
        start();
        SlmClient *c = client();
        SlmClientError err;
        char *name = nullptr;
        uint64_t last = 0;
        auto progress = [](uint64_t done, uint64_t, void *data) {
                *static_cast<uint64_t *>(data) = done;
        };
        ASSERT_EQ(
            slm_client_import(c, shared(kStory).c_str(), nullptr, progress, &last, &name, &err), 0)
            << err.message;
        EXPECT_STREQ(name, "stories260K"); // from general.name
        free(name);
        struct stat st;
        stat(shared(kStory).c_str(), &st);
        EXPECT_EQ(last, (uint64_t)st.st_size);
        SlmModelInfo *m;
        size_t n;
        ASSERT_EQ(slm_client_list_models(c, &m, &n, nullptr), 0);
        ASSERT_EQ(n, 1u);
        std::string sum;
        run_cmd("sha256sum '" + shared(kStory) + "'", &sum);
        EXPECT_EQ(sum.substr(0, 64), m[0].sha256);
        EXPECT_TRUE(m[0].is_default);
        EXPECT_STREQ(m[0].architecture, "llama");
        EXPECT_STREQ(m[0].quantization, "F32");
        std::string sha = m[0].sha256;
        slm_model_info_free(m, n);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();

        // what a crash in the middle of an import would leave
        run_cmd("head -c 1000 '" + shared(kStory) + "' > '" + state + "/models/.import-AbC123'");
        run_cmd("cp '" + shared(kStory) + "' '" + state + "/models/half.gguf'");
        start();
        c = client();
        ASSERT_EQ(slm_client_list_models(c, &m, &n, nullptr), 0);
        ASSERT_EQ(n, 1u);
        EXPECT_STREQ(m[0].name, "stories260K");
        EXPECT_EQ(sha, m[0].sha256);
        slm_model_info_free(m, n);
        EXPECT_NE(access((state + "/models/.import-AbC123").c_str(), F_OK), 0);
        EXPECT_NE(access((state + "/models/half.gguf").c_str(), F_OK), 0);
        slm_client_free(c);
        std::string out;
        EXPECT_EQ(run_cmd(slmctl("run --default 'Once upon a time' -n 8 --temp 0"), &out), 0);
        EXPECT_EQ(out.rfind(", there was a little girl", 0), 0u) << out;
}

namespace
{

// A raw connection for calls no well-behaved client makes.
struct Raw {
        DBusConnection *conn = nullptr;
        explicit Raw(const std::string &address)
        {
                DBusError e;
                dbus_error_init(&e);
                conn = dbus_connection_open_private(address.c_str(), &e);
                if (conn)
                        dbus_bus_register(conn, &e);
                dbus_error_free(&e);
        }
        ~Raw()
        {
                dbus_connection_close(conn);
                dbus_connection_unref(conn);
        }
        // Send @msg; the error name, or "" on success (the reply in *ret when given).
        std::string call(DBusMessage *msg, DBusMessage **ret = nullptr)
        {
                DBusError e;
                dbus_error_init(&e);
                DBusMessage *r = dbus_connection_send_with_reply_and_block(conn, msg, 20000, &e);
                dbus_message_unref(msg);
                std::string name = r ? "" : e.name;
                dbus_error_free(&e);
                if (r && ret)
                        *ret = r;
                else if (r)
                        dbus_message_unref(r);
                return name;
        }
        std::string session()
        {
                DBusMessage *m = dbus_message_new_method_call(
                    "org.slmd.Slm1", "/org/slmd/Slm1", "org.slmd.Slm1.Manager", "CreateSession");
                DBusMessageIter it, d;
                dbus_message_iter_init_append(m, &it);
                dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &d);
                dbus_message_iter_close_container(&it, &d);
                DBusMessage *r = nullptr;
                EXPECT_EQ(call(m, &r), "");
                const char *path = "";
                dbus_message_get_args(r, nullptr, DBUS_TYPE_OBJECT_PATH, &path, DBUS_TYPE_INVALID);
                std::string p = path;
                dbus_message_unref(r);
                return p;
        }
};

// Generate(prompt, {key: value}) with one option of any basic type.
// {key: value} of any basic type into an open a{sv}.
void add_option(DBusMessageIter *d, const char *key, int type, const void *value)
{
        DBusMessageIter e, v;
        char sig[2] = { (char)type, 0 };
        dbus_message_iter_open_container(d, DBUS_TYPE_DICT_ENTRY, nullptr, &e);
        dbus_message_iter_append_basic(&e, DBUS_TYPE_STRING, &key);
        dbus_message_iter_open_container(&e, DBUS_TYPE_VARIANT, sig, &v);
        dbus_message_iter_append_basic(&v, type, value);
        dbus_message_iter_close_container(&e, &v);
        dbus_message_iter_close_container(d, &e);
}

DBusMessage *generate_with(const std::string &path, const char *prompt, const char *key, int type,
                           const void *value)
{
        DBusMessage *m = dbus_message_new_method_call("org.slmd.Slm1", path.c_str(),
                                                      "org.slmd.Slm1.Session", "Generate");
        DBusMessageIter it, d;
        dbus_message_iter_init_append(m, &it);
        dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &prompt);
        dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &d);
        if (key)
                add_option(&d, key, type, value);
        dbus_message_iter_close_container(&it, &d);
        return m;
}

} // namespace

TEST_F(Daemon, BadInputGetsSpecificErrorsAndTheDaemonStaysUp)
{
        start(shared(kStory));
        Raw raw(address);
        std::string s = raw.session();
        ASSERT_FALSE(s.empty());

        // wrong argument types: the bus layer refuses them
        DBusMessage *m = dbus_message_new_method_call("org.slmd.Slm1", s.c_str(),
                                                      "org.slmd.Slm1.Session", "Generate");
        dbus_int32_t i = 5;
        dbus_message_append_args(m, DBUS_TYPE_INT32, &i, DBUS_TYPE_INVALID);
        EXPECT_EQ(raw.call(m), "org.freedesktop.DBus.Error.InvalidArgs");

        // unknown option, wrong option type, absurd and negative sampling values
        dbus_uint32_t one = 1, zero = 0;
        double neg = -1.0, big = 5.0;
        const char *str = "x";
        EXPECT_EQ(raw.call(generate_with(s, "hi", "bogus", DBUS_TYPE_UINT32, &one)),
                  "org.slmd.Slm1.Error.InvalidArgument");
        EXPECT_EQ(raw.call(generate_with(s, "hi", "max-tokens", DBUS_TYPE_STRING, &str)),
                  "org.slmd.Slm1.Error.InvalidArgument");
        EXPECT_EQ(raw.call(generate_with(s, "hi", "max-tokens", DBUS_TYPE_UINT32, &zero)),
                  "org.slmd.Slm1.Error.InvalidArgument");
        EXPECT_EQ(raw.call(generate_with(s, "hi", "temperature", DBUS_TYPE_DOUBLE, &neg)),
                  "org.slmd.Slm1.Error.InvalidArgument");
        EXPECT_EQ(raw.call(generate_with(s, "hi", "top-p", DBUS_TYPE_DOUBLE, &big)),
                  "org.slmd.Slm1.Error.InvalidArgument");

        // a stop string past 1024 bytes, a Chat of more than 1024 messages
        std::string long_stop(1025, 's');
        const char *stops[] = { long_stop.c_str(), nullptr };
        SlmGenerateOptions so = greedy(5);
        so.stop = stops;
        {
                SlmClient *sc = client();
                SlmSession *ss = nullptr;
                SlmClientError e;
                ASSERT_EQ(slm_client_create_session(sc, nullptr, &ss, &e), 0) << e.message;
                EXPECT_EQ(slm_session_generate(ss, "hi", &so, nullptr, nullptr, nullptr, &e),
                          SLM_STATUS_INVALID_ARGUMENT);
                EXPECT_NE(std::string(e.message).find("'stop'"), std::string::npos) << e.message;
                std::vector<SlmChatTurn> many(1025, SlmChatTurn{ "user", "hi" });
                EXPECT_EQ(slm_session_chat(ss, many.data(), many.size(), &so, nullptr, nullptr,
                                           nullptr, &e),
                          SLM_STATUS_INVALID_ARGUMENT);
                EXPECT_NE(std::string(e.message).find("1 to 1024 messages"), std::string::npos)
                    << e.message;
                slm_session_free(ss);
                slm_client_free(sc);
        }

        // a 10 MB prompt
        std::string huge(10 << 20, 'a');
        EXPECT_EQ(raw.call(generate_with(s, huge.c_str(), nullptr, 0, nullptr)),
                  "org.slmd.Slm1.Error.InvalidArgument");

        // another session's path, a session that never existed
        EXPECT_EQ(
            raw.call(dbus_message_new_method_call("org.slmd.Slm1", "/org/slmd/Slm1/session/999",
                                                  "org.slmd.Slm1.Session", "Reset")),
            "org.freedesktop.DBus.Error.UnknownMethod");

        SlmClient *c = client();
        SlmClientError err;
        // a prompt longer than the context
        SlmSessionOptions small = { nullptr, nullptr, 64 };
        SlmSession *sess = nullptr;
        ASSERT_EQ(slm_client_create_session(c, &small, &sess, &err), 0) << err.message;
        std::string longp;
        for (int k = 0; k < 100; k++)
                longp += "the cat sat on the mat. ";
        SlmGenerateOptions o = greedy(5);
        EXPECT_EQ(slm_session_generate(sess, longp.c_str(), &o, nullptr, nullptr, nullptr, &err),
                  SLM_STATUS_CONTEXT_OVERFLOW);
        // invalid UTF-8 never reaches the bus
        EXPECT_EQ(slm_session_generate(sess, "caf\xc3", &o, nullptr, nullptr, nullptr, &err),
                  SLM_STATUS_INVALID_ARGUMENT);
        // the session still works
        SlmFinish fin;
        EXPECT_EQ(slm_session_generate(sess, "Once", &o, nullptr, nullptr, &fin, &err), 0)
            << err.message;
        char **words = nullptr;
        EXPECT_EQ(slm_session_suggest(sess, "Once upon a", 0, &words, &err),
                  SLM_STATUS_INVALID_ARGUMENT);
        EXPECT_EQ(slm_session_suggest(sess, "Once upon a", 1000, &words, &err),
                  SLM_STATUS_INVALID_ARGUMENT);
        slm_session_free(sess);
        SlmSessionOptions bad = { nullptr, "urgent", 0 };
        EXPECT_EQ(slm_client_create_session(c, &bad, &sess, &err), SLM_STATUS_INVALID_ARGUMENT);

        // imports: not GGUF, truncated GGUF, names with path separators
        std::string junk = dir + "/junk.gguf", cut = dir + "/cut.gguf";
        run_cmd("seq 1000 > '" + junk + "'");
        run_cmd("head -c 4000 '" + shared(kStory) + "' > '" + cut + "'");
        EXPECT_EQ(slm_client_import(c, junk.c_str(), "junk", nullptr, nullptr, nullptr, &err),
                  SLM_STATUS_INVALID_MODEL);
        EXPECT_NE(std::string(err.message).find("bad magic"), std::string::npos)
            << "[" << err.message << "]";
        EXPECT_EQ(slm_client_import(c, cut.c_str(), "cut", nullptr, nullptr, nullptr, &err),
                  SLM_STATUS_INVALID_MODEL);
        EXPECT_TRUE(std::string(err.message).find("truncated") != std::string::npos ||
                    std::string(err.message).find("past the end") != std::string::npos)
            << err.message;
        for (const char *name : { "../evil", "a/b", ".hidden", "x\\y" })
                EXPECT_EQ(slm_client_import(c, shared(kStory).c_str(), name, nullptr, nullptr,
                                            nullptr, &err),
                          SLM_STATUS_INVALID_ARGUMENT)
                    << name;
        EXPECT_EQ(slm_client_remove(c, "nosuch", false, &err), SLM_STATUS_NOT_FOUND);

        // still up, nothing half-imported left behind
        SlmModelInfo *models;
        size_t n;
        ASSERT_EQ(slm_client_list_models(c, &models, &n, &err), 0);
        EXPECT_EQ(n, 0u);
        slm_model_info_free(models, n);
        slm_client_free(c);
        std::string left;
        run_cmd("ls -A '" + state + "/models'", &left);
        EXPECT_EQ(left, "");
        EXPECT_EQ(stop(), 0) << log(); // sanitizer builds: no leak on the way out
}

// Found by a user, then by tests/fuzz/dbus-fuzz: an Append that adds nothing fell through to
// sampling without a sampler and crashed the inference thread. Every kind of request with nothing
// new to evaluate must end cleanly, and the session must go on working.
TEST_F(Daemon, RequestsWithNothingToEvaluateEndCleanly)
{
        start(shared(kStory));
        SlmClient *c = client();
        SlmSession *sess = nullptr;
        SlmClientError err;
        ASSERT_EQ(slm_client_create_session(c, nullptr, &sess, &err), 0) << err.message;
        // the two calls of the report, then more of the same
        ASSERT_EQ(slm_session_append(sess, "Once upon", &err), 0) << err.message;
        ASSERT_EQ(slm_session_append(sess, "", &err), 0) << err.message;
        ASSERT_EQ(slm_session_append(sess, "", &err), 0) << err.message;
        // a generation after it continues the context ("Once upon" + " a time")
        SlmGenerateOptions o = greedy(3);
        Stream st;
        SlmFinish fin;
        ASSERT_EQ(slm_session_generate(sess, "", &o, collect, &st, &fin, &err), 0) << err.message;
        EXPECT_STREQ(fin.reason, "length");
        EXPECT_EQ(st.text.rfind(" a time", 0), 0u) << "[" << st.text << "]";
        // the generated tokens wait to be evaluated: an empty Append takes them in
        ASSERT_EQ(slm_session_append(sess, "", &err), 0) << err.message;
        char **words = nullptr;
        ASSERT_EQ(slm_session_suggest(sess, "", 3, &words, &err), 0) << err.message;
        slm_strv_free(words);
        ASSERT_EQ(slm_session_smart_replies(sess, "", 2, &words, &err), 0) << err.message;
        slm_strv_free(words);
        SlmChatTurn empty[] = { { "user", "" } };
        ASSERT_EQ(slm_session_chat(sess, empty, 1, &o, nullptr, nullptr, &fin, &err), 0)
            << err.message;
        ASSERT_EQ(slm_session_reset(sess, &err), 0) << err.message;
        ASSERT_EQ(slm_session_append(sess, "", &err), 0) << err.message; // BOS alone
        ASSERT_EQ(slm_session_append(sess, "", &err), 0) << err.message;
        slm_session_free(sess);

        // the smallest context: Suggest fits its word, SmartReplies says the context is too small
        SlmSessionOptions tiny = { nullptr, nullptr, 16 };
        ASSERT_EQ(slm_client_create_session(c, &tiny, &sess, &err), 0) << err.message;
        ASSERT_EQ(
            slm_session_suggest(sess, "Once upon a time there was a little girl", 3, &words, &err),
            0)
            << err.message;
        slm_strv_free(words);
        EXPECT_EQ(slm_session_smart_replies(sess, "How are you today, my friend?", 2, &words, &err),
                  SLM_STATUS_CONTEXT_OVERFLOW);
        ASSERT_EQ(slm_session_append(sess, "", &err), 0) << err.message;
        slm_session_free(sess);
        slm_client_free(c);
        EXPECT_TRUE(eventually([&] { return sessions() == 0; }));
        EXPECT_EQ(stop(), 0) << log();
}

// Found by tests/fuzz/dbus-fuzz: an option refused in the middle of the options left the
// loop over them holding its value, and with it the whole message, for good: 96 refused calls
// carrying 256 KiB each kept 12.5 MB.
TEST_F(Daemon, RefusedOptionsKeepNothing)
{
        start(shared(kStory));
        Raw raw(address);
        std::string s = raw.session();
        ASSERT_FALSE(s.empty());
        std::string big(256 << 10, 'a');
        const char *text = big.c_str();
        dbus_uint32_t one = 1;
        auto refused = [&] {
                for (int k = 0; k < 64; k++) {
                        EXPECT_EQ(raw.call(generate_with(s, text, "bogus", DBUS_TYPE_UINT32, &one)),
                                  "org.slmd.Slm1.Error.InvalidArgument");
                        DBusMessage *m =
                            dbus_message_new_method_call("org.slmd.Slm1", "/org/slmd/Slm1",
                                                         "org.slmd.Slm1.Manager", "CreateSession");
                        DBusMessageIter it, d;
                        dbus_message_iter_init_append(m, &it);
                        dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &d);
                        add_option(&d, "system-prompt", DBUS_TYPE_STRING, &text);
                        add_option(&d, "bogus", DBUS_TYPE_UINT32, &one);
                        dbus_message_iter_close_container(&it, &d);
                        EXPECT_EQ(raw.call(m), "org.slmd.Slm1.Error.InvalidArgument");
                }
        };
        refused(); // buffers that grow once to the largest message
        long before = (long)proc_status_value(slmd_pid, "VmRSS:");
        ASSERT_GT(before, 0);
        refused();
        long after = (long)proc_status_value(slmd_pid, "VmRSS:");
#if !defined(__SANITIZE_ADDRESS__)
        // what was kept before the fix; the sanitizers' own bookkeeping grows too much to tell
        EXPECT_LT(after - before, 8 << 10) << before << " kB -> " << after << " kB";
#endif
        printf("RSS %ld kB -> %ld kB after 128 refused calls\n", before, after);
        EXPECT_EQ(stop(), 0) << log();
}

TEST_F(Daemon, PerUserSessionLimit)
{
        start(shared(kStory));
        SlmClient *c = client();
        std::vector<SlmSession *> held;
        SlmClientError err;
        for (int k = 0; k < 16; k++) {
                SlmSession *s = nullptr;
                ASSERT_EQ(slm_client_create_session(c, nullptr, &s, &err), 0) << k << err.message;
                held.push_back(s);
        }
        SlmSession *extra = nullptr;
        EXPECT_EQ(slm_client_create_session(c, nullptr, &extra, &err), SLM_STATUS_QUOTA_EXCEEDED);
        EXPECT_NE(std::string(err.message).find("16 sessions"), std::string::npos) << err.message;
        slm_session_free(held.back()); // closing one makes room
        held.pop_back();
        ASSERT_EQ(slm_client_create_session(c, nullptr, &extra, &err), 0) << err.message;
        held.push_back(extra);
        for (SlmSession *s : held)
                slm_session_free(s);
        slm_client_free(c);
        EXPECT_TRUE(eventually([&] { return sessions() == 0; }));
}

// Run @body as user nobody in a child process; what it returns comes back as text.
std::string as_nobody(const std::function<std::string()> &body)
{
        int p[2];
        if (pipe(p) != 0)
                return "pipe failed";
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                std::string out = setgid(65534) == 0 && setuid(65534) == 0 ? body() : "setuid";
                (void)!write(p[1], out.data(), out.size());
                _exit(0);
        }
        close(p[1]);
        std::string out;
        char buf[1024];
        ssize_t n;
        while ((n = read(p[0], buf, sizeof(buf))) > 0)
                out.append(buf, (size_t)n);
        close(p[0]);
        wait_exit(pid);
        return out;
}

// @body as user nobody on a connection of its own to @address, writing what it saw into its
// text; the sessions it keeps in its list are freed after it.
std::string as_nobody_connected(
    const std::string &address,
    const std::function<void(SlmClient *, std::vector<SlmSession *> &, std::string &)> &body)
{
        return as_nobody([&] {
                std::string r;
                SlmClient *c = nullptr;
                if (slm_client_connect_address(address.c_str(), &c, nullptr) < 0)
                        return std::string("cannot connect");
                std::vector<SlmSession *> held;
                body(c, held, r);
                for (SlmSession *s : held)
                        slm_session_free(s);
                slm_client_free(c);
                return r;
        });
}

// Files in @dir that make slmd see a machine of 2 MiB with user-kv-share=50: one user may hold
// 512 KiB of KV cache. The arguments that point slmd at them.
std::vector<std::string> two_mib_machine(const std::string &dir)
{
        std::string conf = dir + "/slmd.conf";
        FILE *f = fopen(conf.c_str(), "w");
        if (f) {
                fputs("[daemon]\nuser-kv-share=50\n", f);
                fclose(f);
        }
        mkdir((dir + "/proc").c_str(), 0755);
        f = fopen((dir + "/proc/meminfo").c_str(), "w");
        if (f) {
                fputs("MemTotal: 2048 kB\nMemAvailable: 8000000 kB\n", f);
                fclose(f);
        }
        return { "--config", conf, "--procfs-root", dir + "/proc" };
}

// What a create-session call said: "ok" or "<status>: <message>".
std::string created(SlmClient *c, uint32_t context, std::vector<SlmSession *> *held)
{
        SlmSessionOptions o = { nullptr, nullptr, context };
        SlmSession *s = nullptr;
        SlmClientError err;
        if (slm_client_create_session(c, &o, &s, &err) < 0)
                return std::string(slm_status_name(err.status)) + ": " + err.message;
        held->push_back(s);
        return "ok";
}

// A second user's sessions are bounded in number and in KV cache (user-kv-share of the KV
// budget, half the machine's memory: here 50 % of half of a 2 MiB machine, 512 KiB, where a
// default session of the story model takes 320 KiB), and root's are not touched by what that
// user holds.
TEST_F(Daemon, PerUserQuotasForASecondUser)
{
        if (geteuid() != 0)
                GTEST_SKIP() << "needs root to act as a second user";
        start(shared(kStory), two_mib_machine(dir));
        EXPECT_NE(log().find("(50 % of 1.0 MiB)"), std::string::npos) << log();
        EXPECT_NE(log().find("one user's sessions may hold 512.0 KiB of KV cache"),
                  std::string::npos)
            << log();

        // root holds a session and a context of its own throughout
        SlmClient *root = client();
        std::vector<SlmSession *> mine;
        ASSERT_EQ(created(root, 0, &mine), "ok");
        ASSERT_EQ(slm_session_append(mine[0], "Once upon a time", nullptr), 0);

        std::string out = as_nobody_connected(
            address, [&](SlmClient *c, std::vector<SlmSession *> &held, std::string &r) {
                    for (int k = 0; k < 16; k++)
                            if (created(c, 16, &held) != "ok")
                                    r += "session " + std::to_string(k + 1) + " refused\n";
                    r += "17th: " + created(c, 16, &held) + "\n";
                    for (SlmSession *s : held)
                            slm_session_free(s);
                    held.clear();
                    r += "first default: " + created(c, 0, &held) + "\n";
                    r += "second default: " + created(c, 0, &held) + "\n";
                    r += "256 positions: " + created(c, 256, &held) + "\n";
                    for (SlmSession *s : held)
                            r += std::string("append: ") +
                                 (slm_session_append(s, "Once upon a time", nullptr) == 0
                                      ? "ok"
                                      : "refused") +
                                 "\n";
            });
        EXPECT_EQ(out.find("refused\n"), std::string::npos) << out;
        EXPECT_NE(out.find("17th: quota-exceeded: uid 65534 already has 16 sessions"),
                  std::string::npos)
            << out;
        EXPECT_NE(out.find("first default: ok\n"), std::string::npos) << out;
        EXPECT_NE(out.find("second default: quota-exceeded: uid 65534's sessions would hold 640.0 "
                           "KiB of KV cache with this one; one user may hold 512.0 KiB"),
                  std::string::npos)
            << out;
        EXPECT_NE(out.find("256 positions: ok\n"), std::string::npos) << out;
        EXPECT_NE(out.find("append: ok\nappend: ok\n"), std::string::npos) << out;

        // root was not touched: its session goes on, and it gets a context of its own share
        SlmGenerateOptions o = greedy(5);
        SlmFinish fin;
        SlmClientError err;
        EXPECT_EQ(slm_session_generate(mine[0], "", &o, nullptr, nullptr, &fin, &err), 0)
            << err.message;
        EXPECT_EQ(created(root, 256, &mine), "ok");

        // without a resident model the share is checked when the context is made
        ASSERT_EQ(slm_client_unload(root, &err), 0) << err.message;
        out = as_nobody_connected(address, [&](SlmClient *c, std::vector<SlmSession *> &held,
                                               std::string &r) {
                r += created(c, 0, &held) + " " + created(c, 0, &held) + "\n";
                for (SlmSession *s : held) {
                        SlmClientError e;
                        r += slm_session_append(s, "Once", &e) == 0
                                 ? std::string("ok\n")
                                 : std::string(slm_status_name(e.status)) + ": " + e.message + "\n";
                }
        });
        EXPECT_NE(out.find("ok ok\nok\nquota-exceeded: uid 65534's sessions would hold 640.0 KiB"),
                  std::string::npos)
            << out;
        for (SlmSession *s : mine)
                slm_session_free(s);
        slm_client_free(root);
        EXPECT_TRUE(eventually([&] { return sessions() == 0; }));
        EXPECT_EQ(stop(), 0) << log();
}

// Suggest writes its candidates on copies of the session's context, which count against the
// user's share while the call runs: with room for one copy it gives the same words as with room
// for all three (one candidate at a time), and with room for none it says so instead of
// allocating past the share. Same machine as above: 512 KiB, 819 positions of the story model,
// a default session 512 of them.
TEST_F(Daemon, SuggestCandidatesCountAgainstTheUsersShare)
{
        if (geteuid() != 0)
                GTEST_SKIP() << "needs root to act as a second user";
        start(shared(kStory), two_mib_machine(dir));

        // root gives the words with room for every copy, and the text's length in tokens
        const char *text = "Once upon a time, there was a little girl. She ";
        SlmClient *root = client();
        SlmSession *rs = nullptr;
        SlmClientError err;
        ASSERT_EQ(slm_client_create_session(root, nullptr, &rs, &err), 0) << err.message;
        char **words = nullptr;
        ASSERT_EQ(slm_session_suggest(rs, text, 3, &words, &err), 0) << err.message;
        std::string want = joined(words);
        ASSERT_EQ(std::count(want.begin(), want.end(), '|'), 3) << want;
        SlmSessionOptions small = { nullptr, nullptr, 128 }; // root has a share of its own
        SlmSession *probe = nullptr;
        ASSERT_EQ(slm_client_create_session(root, &small, &probe, &err), 0) << err.message;
        SlmGenerateOptions o = greedy(1);
        SlmFinish fin;
        ASSERT_EQ(slm_session_generate(probe, "Once upon a time, there was a little girl. She", &o,
                                       nullptr, nullptr, &fin, &err),
                  0)
            << err.message;
        int copy = (int)fin.prompt_tokens + 5; // the text and the five tokens a word may take
        ASSERT_GT(copy, 12);
        ASSERT_LT(copy, 90);

        std::string out = as_nobody_connected(address, [&](SlmClient *c,
                                                           std::vector<SlmSession *> &held,
                                                           std::string &r) {
                auto suggest = [&](const char *what, const char *on) {
                        char **w = nullptr;
                        SlmClientError e;
                        r += what;
                        if (slm_session_suggest(held[0], on, 3, &w, &e) < 0)
                                r += std::string(slm_status_name(e.status)) + ": " + e.message;
                        else
                                r += joined(w);
                        r += "\n";
                };
                // the keyboard's session, and another one that leaves room for one copy and a half
                r += created(c, 0, &held) + " ";
                r += created(c, 819 - 512 - copy * 3 / 2, &held) + "\n";
                r += slm_session_append(held[1], "Once", nullptr) == 0 ? "" : "append refused\n";
                suggest("one copy: ", text);
                // then room for half a copy
                slm_session_free(held[1]);
                held.pop_back();
                r += created(c, 819 - 512 - copy / 2, &held) + "\n";
                r += slm_session_append(held[1], "Once", nullptr) == 0 ? "" : "append refused\n";
                // the same text: its words are known from the call before, no copy is needed
                suggest("none, same text: ", text);
                suggest("none: ", "Once upon a time, there was a little boy. He ");
                slm_session_free(held[1]);
                held.pop_back();
                suggest("alone: ", text);
        });
        EXPECT_NE(out.find("ok ok\none copy: " + want + "\n"), std::string::npos) << out;
        EXPECT_NE(out.find("none, same text: " + want + "\n"), std::string::npos) << out;
        EXPECT_NE(out.find("none: quota-exceeded: uid 65534's sessions would hold "),
                  std::string::npos)
            << out;
        EXPECT_NE(out.find("with a copy of this one's context to write candidates on"),
                  std::string::npos)
            << out;
        EXPECT_NE(out.find("alone: " + want + "\n"), std::string::npos) << out;
        slm_session_free(probe);
        slm_session_free(rs);
        slm_client_free(root);
        EXPECT_TRUE(eventually([&] { return sessions() == 0; }));
        EXPECT_EQ(stop(), 0) << log();
}

TEST_F(Daemon, ChatAndSmartReplies)
{
        start(shared(kStory));
        SlmClient *c = client();
        SlmSession *s = nullptr;
        SlmClientError err;
        ASSERT_EQ(slm_client_create_session(c, nullptr, &s, &err), 0);
        SlmChatTurn turns[] = { { "system", "You tell stories." }, { "user", "Tell me a story." } };
        Stream st;
        SlmFinish fin;
        SlmGenerateOptions o = greedy(20);
        ASSERT_EQ(slm_session_chat(s, turns, 2, &o, collect, &st, &fin, &err), 0) << err.message;
        EXPECT_STREQ(fin.reason, "length");
        EXPECT_EQ(fin.tokens, 20u);
        EXPECT_FALSE(st.text.empty());
        SlmChatTurn bad[] = { { "narrator", "x" } };
        EXPECT_EQ(slm_session_chat(s, bad, 1, &o, collect, &st, &fin, &err),
                  SLM_STATUS_INVALID_ARGUMENT);

        char **replies = nullptr;
        ASSERT_EQ(
            slm_session_smart_replies(s, "Do you want to play in the park?", 3, &replies, &err), 0)
            << err.message;
        int n = 0;
        for (; replies[n]; n++) {
                EXPECT_GT(strlen(replies[n]), 0u);
                EXPECT_EQ(strchr(replies[n], '\n'), nullptr);
                for (int k = 0; k < n; k++)
                        EXPECT_STRNE(replies[k], replies[n]);
        }
        EXPECT_EQ(n, 3);
        slm_strv_free(replies);
        slm_session_free(s);
        slm_client_free(c);
}

// A copy of the story model that carries @tmpl (from ../shared/chat-templates, or a path) as its
// own template.
std::string model_with_template(const std::string &dir, const std::string &tmpl)
{
        bool path = tmpl.find('/') != std::string::npos;
        std::string out = dir + "/" + (path ? "own" : tmpl) + ".gguf";
        EXPECT_EQ(run_cmd("/usr/bin/python3 '" + env("GGUF_SET_TEMPLATE") + "' '" + shared(kStory) +
                          "' '" +
                          (path ? tmpl : shared("chat-templates/templates/" + tmpl + ".jinja")) +
                          "' '" + out + "'"),
                  0);
        return out;
}

// What the engine alone continues @conversation with: slm-template writes it, slm-generate goes on.
std::string engine_alone(const std::string &dir, const std::string &model, const std::string &tmpl,
                         const std::string &conversation, int n)
{
        std::string conv = dir + "/conversation.json", prompt;
        FILE *f = fopen(conv.c_str(), "w");
        fputs(conversation.c_str(), f);
        fclose(f);
        EXPECT_EQ(run_cmd("'" + env("SLM_TEMPLATE") + "' '" +
                          shared("chat-templates/templates/" + tmpl + ".jinja") + "' '" + conv +
                          "' > '" + dir + "/prompt.txt'"),
                  0);
        std::string out;
        // the prompt as it is, its final newline too
        EXPECT_EQ(run_cmd("{ p=$(cat '" + dir + "/prompt.txt'; printf x); '" + env("SLM_GENERATE") +
                              "' '" + model + "' \"${p%x}\" --parse-special -n " +
                              std::to_string(n) + " 2>'" + dir + "/generate.log'; }",
                          &out),
                  0);
        if (!out.empty() && out.back() == '\n')
                out.pop_back();
        return out;
}

TEST_F(Daemon, ChatMessagesSpeakTheModelsOwnTemplate)
{
        std::string qwen = model_with_template(dir, "Qwen-Qwen2.5-7B-Instruct");
        start(qwen);
        SlmClient *c = client();
        SlmSession *s = nullptr, *fresh = nullptr;
        SlmClientError err;
        ASSERT_EQ(slm_client_create_session(c, nullptr, &s, &err), 0);

        // the conversation as the template writes it: the same continuation as slm-template's
        // prompt through the engine alone
        SlmMessage msgs[] = { { "system", "You tell stories.", nullptr, nullptr },
                              { "user", "Tell me about a cat.", nullptr, nullptr } };
        std::string want =
            engine_alone(dir, qwen, "Qwen-Qwen2.5-7B-Instruct",
                         R"({"messages": [{"role": "system", "content": "You tell stories."},)"
                         R"( {"role": "user", "content": "Tell me about a cat."}]})",
                         12);
        ASSERT_FALSE(want.empty());
        Stream st;
        SlmFinish fin;
        SlmGenerateOptions o = greedy(12);
        ASSERT_EQ(slm_session_chat_messages(s, msgs, 2, &o, collect, &st, &fin, &err), 0)
            << err.message;
        EXPECT_EQ(st.text, want) << fin.prompt_tokens;

        // the next turn: only what is new is processed, and it continues as a fresh session would
        std::string reply = st.text;
        SlmMessage more[] = { msgs[0],
                              msgs[1],
                              { "assistant", reply.c_str(), nullptr, nullptr },
                              { "user", "And a dog?", nullptr, nullptr } };
        Stream st2, st3;
        ASSERT_EQ(slm_session_chat_messages(s, more, 4, &o, collect, &st2, &fin, &err), 0)
            << err.message;
        uint32_t reused = fin.prompt_tokens;
        ASSERT_EQ(slm_client_create_session(c, nullptr, &fresh, &err), 0);
        ASSERT_EQ(slm_session_chat_messages(fresh, more, 4, &o, collect, &st3, &fin, &err), 0)
            << err.message;
        EXPECT_LT(reused, fin.prompt_tokens / 2) << "the shared prefix was evaluated again";
        EXPECT_EQ(st2.text, st3.text);

        // Chat writes its turns with the same template
        Stream st4, st5;
        SlmSession *chat = nullptr;
        ASSERT_EQ(slm_client_create_session(c, nullptr, &chat, &err), 0);
        SlmChatTurn turns[] = { { "system", "You tell stories." },
                                { "user", "Tell me about a cat." } };
        ASSERT_EQ(slm_session_chat(chat, turns, 2, &o, collect, &st4, &fin, &err), 0);
        EXPECT_EQ(st4.text, want);

        // wrong shapes are refused with what is wrong, and the daemon goes on
        SlmMessage no_role[] = { { nullptr, "x", nullptr, nullptr } };
        EXPECT_EQ(slm_session_chat_messages(s, no_role, 1, &o, collect, &st5, &fin, &err),
                  SLM_STATUS_INVALID_ARGUMENT);
        SlmMessage bad_calls[] = { { "assistant", "", "{not json", nullptr } };
        EXPECT_EQ(slm_session_chat_messages(s, bad_calls, 1, &o, collect, &st5, &fin, &err),
                  SLM_STATUS_INVALID_ARGUMENT);
        EXPECT_NE(std::string(err.message).find("JSON"), std::string::npos) << err.message;
        SlmGenerateOptions bad_tools = greedy(4);
        bad_tools.tools = "{\"not\": \"a list\"}";
        EXPECT_EQ(slm_session_chat_messages(s, msgs, 2, &bad_tools, collect, &st5, &fin, &err),
                  SLM_STATUS_INVALID_ARGUMENT);
        slm_session_free(chat);
        slm_session_free(fresh);
        slm_session_free(s);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();

        // tools, a tool call and its result reach the model as its template writes them
        std::string mistral = model_with_template(dir, "mistralai-Mistral-Nemo-Instruct-2407");
        start(mistral);
        c = client();
        ASSERT_EQ(slm_client_create_session(c, nullptr, &s, &err), 0);
        const char *tools = R"([{"type": "function", "function": {"name": "get_weather",)"
                            R"( "description": "Current weather", "parameters": {"type": "object",)"
                            R"( "properties": {"city": {"type": "string"}}}}}])";
        const char *calls = R"([{"type": "function", "id": "abc123XYZ", "function":)"
                            R"( {"name": "get_weather", "arguments": {"city": "Oslo"}}}])";
        SlmMessage turn[] = { { "user", "Weather in Oslo?", nullptr, nullptr },
                              { "assistant", "", calls, nullptr },
                              { "tool", "{\"temp_c\": 4}", nullptr, "abc123XYZ" } };
        want = engine_alone(dir, mistral, "mistralai-Mistral-Nemo-Instruct-2407",
                            std::string(R"({"tools": )") + tools +
                                R"(, "messages": [{"role": "user", "content": "Weather in Oslo?"},)"
                                R"( {"role": "assistant", "content": "", "tool_calls": )" +
                                calls +
                                R"(}, {"role": "tool", "content": "{\"temp_c\": 4}",)"
                                R"( "tool_call_id": "abc123XYZ"}]})",
                            12);
        ASSERT_FALSE(want.empty());
        o.tools = tools;
        Stream st6;
        ASSERT_EQ(slm_session_chat_messages(s, turn, 3, &o, collect, &st6, &fin, &err), 0)
            << err.message;
        EXPECT_EQ(st6.text, want);
        EXPECT_GT(fin.prompt_tokens, 150u); // the tools and the call were read
        slm_session_free(s);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();
}

TEST_F(Daemon, StructuredOutputAlwaysParses)
{
        start(shared(kStory));
        SlmClient *c = client();
        SlmSession *s = nullptr;
        SlmClientError err;
        SlmFinish fin;
        ASSERT_EQ(slm_client_create_session(c, nullptr, &s, &err), 0);
        const char *schema = R"({"type": "object", "properties": {
                "hero": {"type": "string", "minLength": 1, "maxLength": 16},
                "mood": {"enum": ["happy", "sad", "brave"]},
                "friends": {"type": "integer", "minimum": 0, "maximum": 9}},
                "required": ["hero", "mood"]})";
        for (uint64_t seed = 1; seed <= 20; seed++) {
                SlmGenerateOptions o = greedy(300);
                o.temperature = 1.0;
                o.has_seed = true;
                o.seed = seed;
                o.json_schema = schema;
                Stream st;
                ASSERT_EQ(slm_session_generate(s, "Once upon a time", &o, collect, &st, &fin, &err),
                          0)
                    << err.message;
                EXPECT_STREQ(fin.reason, "stop") << st.text;
                auto j = nlohmann::json::parse(st.text, nullptr, false);
                ASSERT_TRUE(j.is_object()) << st.text;
                ASSERT_TRUE(j["hero"].is_string()) << st.text;
                EXPECT_TRUE(j["mood"] == "happy" || j["mood"] == "sad" || j["mood"] == "brave")
                    << st.text;
                if (j.contains("friends")) {
                        ASSERT_TRUE(j["friends"].is_number_integer()) << st.text;
                        EXPECT_GE(j["friends"].get<int>(), 0);
                        EXPECT_LE(j["friends"].get<int>(), 9);
                }
                EXPECT_LE(j.size(), 3u) << st.text;
                ASSERT_EQ(slm_session_reset(s, &err), 0);
        }

        // a GBNF grammar in a chat
        SlmGenerateOptions o = greedy(40);
        o.grammar = "root ::= (\"yes\" | \"no\") \", because \" [a-z ]{1,20} \".\"";
        SlmChatTurn turn[] = { { "user", "Is the sky blue?" } };
        Stream st;
        ASSERT_EQ(slm_session_chat(s, turn, 1, &o, collect, &st, &fin, &err), 0) << err.message;
        EXPECT_TRUE(st.text.rfind("yes, because ", 0) == 0 || st.text.rfind("no, because ", 0) == 0)
            << st.text;
        EXPECT_EQ(st.text.back(), '.') << st.text;
        EXPECT_STREQ(fin.reason, "stop");

        // what cannot be honoured is refused up front, with the reason
        SlmGenerateOptions bad = greedy(4);
        bad.json_schema = R"({"type": "string", "pattern": "^[a-z]+$"})";
        EXPECT_EQ(slm_session_generate(s, "x", &bad, collect, &st, &fin, &err),
                  SLM_STATUS_INVALID_ARGUMENT);
        EXPECT_NE(std::string(err.message).find("pattern"), std::string::npos) << err.message;
        bad.json_schema = nullptr;
        bad.grammar = "root ::= root \"x\"";
        EXPECT_EQ(slm_session_generate(s, "x", &bad, collect, &st, &fin, &err),
                  SLM_STATUS_INVALID_ARGUMENT);
        EXPECT_NE(std::string(err.message).find("left-recursive"), std::string::npos)
            << err.message;
        bad.json_schema = R"({"type": "string"})";
        EXPECT_EQ(slm_session_generate(s, "x", &bad, collect, &st, &fin, &err),
                  SLM_STATUS_INVALID_ARGUMENT);

        // and from slmctl
        std::string file = dir + "/schema.json", out;
        FILE *f = fopen(file.c_str(), "w");
        fputs(R"({"type": "array", "items": {"type": "boolean"}, "minItems": 2, "maxItems": 2})",
              f);
        fclose(f);
        ASSERT_EQ(run_cmd("{ " + slmctl("run --default 'Once' --json-schema '" + file + "' -n 50") +
                              " 2>/dev/null; }",
                          &out),
                  0)
            << out;
        auto j = nlohmann::json::parse(out, nullptr, false);
        ASSERT_TRUE(j.is_array()) << out;
        EXPECT_EQ(j.size(), 2u);
        slm_session_free(s);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();
}

// The arguments of a set_light call, checked against its schema by hand.
void expect_set_light(const nlohmann::json &call, const std::string &text)
{
        EXPECT_EQ(call["name"], "set_light") << text;
        const auto &a = call["arguments"];
        ASSERT_TRUE(a.is_object()) << text;
        EXPECT_TRUE(a["room"] == "kitchen" || a["room"] == "bedroom") << text;
        EXPECT_TRUE(a["on"].is_boolean()) << text;
        EXPECT_EQ(a.size(), 2u) << text;
}

TEST_F(Daemon, ForcedToolCallsInTheModelsOwnFormat)
{
        const std::string light = R"({"type": "function", "function": {"name": "set_light",)"
                                  R"( "parameters": {"type": "object", "properties": {"room":)"
                                  R"( {"type": "string", "enum": ["kitchen", "bedroom"]}, "on":)"
                                  R"( {"type": "boolean"}}, "required": ["room", "on"]}}})";
        const std::string weather = R"({"type": "function", "function": {"name": "get_weather",)"
                                    R"( "parameters": {"type": "object", "properties": {"city":)"
                                    R"( {"type": "string", "maxLength": 20}}, "required":)"
                                    R"( ["city"]}}})";
        const std::string both = "[" + light + ", " + weather + "]";
        const char *tools = both.c_str();
        SlmMessage ask[] = { { "user", "Turn the kitchen light on.", nullptr, nullptr } };
        SlmClientError err;
        SlmFinish fin = {};

        // <tool_call> ... </tool_call>, as Qwen's and Hermes' templates show calls
        start(model_with_template(dir, env("SHORT_TOOLS_TEMPLATE")));
        SlmClient *c = client();
        SlmSession *s = nullptr;
        ASSERT_EQ(slm_client_create_session(c, nullptr, &s, &err), 0);
        for (uint64_t seed = 1; seed <= 5; seed++) {
                SlmGenerateOptions o = greedy(120);
                o.temperature = 1.0;
                o.has_seed = true;
                o.seed = seed;
                o.tools = tools;
                o.tool_choice = "set_light";
                Stream st;
                ASSERT_EQ(slm_session_chat_messages(s, ask, 1, &o, collect, &st, &fin, &err), 0)
                    << err.message;
                EXPECT_STREQ(fin.reason, "stop") << st.text;
                EXPECT_EQ(st.text.rfind("<tool_call>\n{", 0), 0u) << st.text;
                EXPECT_NE(st.text.find("}\n</tool_call>"), std::string::npos) << st.text;
                ASSERT_NE(fin.tool_calls, nullptr) << st.text;
                auto calls = nlohmann::json::parse(fin.tool_calls, nullptr, false);
                ASSERT_TRUE(calls.is_array()) << fin.tool_calls;
                ASSERT_EQ(calls.size(), 1u) << fin.tool_calls;
                expect_set_light(calls[0], st.text);
                slm_finish_clear(&fin);
        }
        // no call asked for: none reported
        SlmGenerateOptions none = greedy(8);
        none.tools = tools;
        none.tool_choice = "none";
        Stream st;
        ASSERT_EQ(slm_session_chat_messages(s, ask, 1, &none, collect, &st, &fin, &err), 0);
        EXPECT_EQ(fin.tool_calls, nullptr);
        // a function that is not among the tools, a choice without tools
        none.tool_choice = "open_door";
        EXPECT_EQ(slm_session_chat_messages(s, ask, 1, &none, collect, &st, &fin, &err),
                  SLM_STATUS_INVALID_ARGUMENT);
        EXPECT_NE(std::string(err.message).find("no function"), std::string::npos) << err.message;
        none.tools = nullptr;
        none.tool_choice = "required";
        EXPECT_EQ(slm_session_chat_messages(s, ask, 1, &none, collect, &st, &fin, &err),
                  SLM_STATUS_INVALID_ARGUMENT);
        slm_session_free(s);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();

        // [TOOL_CALLS][...], as Mistral's: either function when a call is required
        start(model_with_template(dir, "mistralai-Mistral-Nemo-Instruct-2407"));
        c = client();
        ASSERT_EQ(slm_client_create_session(c, nullptr, &s, &err), 0);
        for (uint64_t seed = 1; seed <= 5; seed++) {
                SlmGenerateOptions o = greedy(120);
                o.temperature = 1.0;
                o.has_seed = true;
                o.seed = seed;
                o.tools = both.c_str();
                o.tool_choice = "required";
                Stream st2;
                ASSERT_EQ(slm_session_chat_messages(s, ask, 1, &o, collect, &st2, &fin, &err), 0)
                    << err.message;
                EXPECT_EQ(st2.text.rfind("[TOOL_CALLS][{", 0), 0u) << st2.text;
                ASSERT_NE(fin.tool_calls, nullptr) << st2.text;
                auto calls = nlohmann::json::parse(fin.tool_calls, nullptr, false);
                ASSERT_TRUE(calls.is_array() && calls.size() == 1) << fin.tool_calls;
                if (calls[0]["name"] == "get_weather") {
                        ASSERT_TRUE(calls[0]["arguments"]["city"].is_string()) << st2.text;
                        EXPECT_EQ(calls[0]["arguments"].size(), 1u) << st2.text;
                } else {
                        expect_set_light(calls[0], st2.text);
                }
                slm_finish_clear(&fin);
        }
        slm_session_free(s);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();
}

TEST_F(Daemon, TemplateThatRefusesAndModelsWithoutOne)
{
        // Gemma's template has no system turn: its own message comes back
        std::string gemma = model_with_template(dir, "google-gemma-2-2b-it");
        start(gemma);
        SlmClient *c = client();
        SlmSession *s = nullptr;
        SlmClientError err;
        Stream st;
        SlmFinish fin;
        SlmGenerateOptions o = greedy(4);
        ASSERT_EQ(slm_client_create_session(c, nullptr, &s, &err), 0);
        SlmMessage sys[] = { { "system", "Be brief.", nullptr, nullptr },
                             { "user", "Hi", nullptr, nullptr } };
        EXPECT_EQ(slm_session_chat_messages(s, sys, 2, &o, collect, &st, &fin, &err),
                  SLM_STATUS_INVALID_ARGUMENT);
        EXPECT_NE(std::string(err.message).find("System role not supported"), std::string::npos)
            << err.message;
        ASSERT_EQ(slm_session_chat_messages(s, sys + 1, 1, &o, collect, &st, &fin, &err), 0)
            << err.message;
        EXPECT_EQ(fin.tokens, 4u);
        slm_session_free(s);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();

        // the story model has no template: the built-in format, which knows three roles
        start(shared(kStory));
        c = client();
        ASSERT_EQ(slm_client_create_session(c, nullptr, &s, &err), 0);
        SlmMessage tool[] = { { "tool", "{}", nullptr, nullptr } };
        EXPECT_EQ(slm_session_chat_messages(s, tool, 1, &o, collect, &st, &fin, &err),
                  SLM_STATUS_INVALID_ARGUMENT);
        EXPECT_NE(std::string(err.message).find("no chat template"), std::string::npos)
            << err.message;
        SlmMessage user[] = { { "user", "Tell me a story.", nullptr, nullptr } };
        ASSERT_EQ(slm_session_chat_messages(s, user, 1, &o, collect, &st, &fin, &err), 0)
            << err.message;
        slm_session_free(s);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();
}

TEST_F(Daemon, SlmctlForPeopleAndScripts)
{
        start(shared(kStory));
        std::string out;
        EXPECT_EQ(run_cmd(slmctl("status"), &out), 0);
        EXPECT_NE(out.find("model:    stories260K-f32.gguf"), std::string::npos) << out;
        const std::string parse =
            " | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin))'";
        for (const char *cmd : { "--json status", "--json list", "--json suggest 'Once upon a'",
                                 "--json run --default 'Once' -n 5", "--json rm nosuch" }) {
                EXPECT_EQ(run_cmd(slmctl(cmd) + parse, &out), 0) << cmd << ": " << out;
        }
        EXPECT_EQ(run_cmd(slmctl("--json rm nosuch"), &out), 1);
        EXPECT_NE(out.find("\"error\":\"not-found\""), std::string::npos) << out;
        // chat reads lines from a pipe as well as from a terminal
        EXPECT_EQ(run_cmd("printf 'Hello\\nTell me more\\n' | " + slmctl("chat -n 8"), &out), 0)
            << out;
        EXPECT_EQ(run_cmd(slmctl("frobnicate"), &out), 2);
        EXPECT_NE(out.find("Usage:"), std::string::npos);
}

TEST_F(Daemon, ModelManagement)
{
        start();
        SlmClient *c = client();
        SlmClientError err;
        SlmSession *s = nullptr;
        SlmGenerateOptions o = greedy(5);
        ASSERT_EQ(slm_client_create_session(c, nullptr, &s, &err), 0);
        // an empty store: nothing to run
        EXPECT_EQ(slm_session_generate(s, "Once", &o, nullptr, nullptr, nullptr, &err),
                  SLM_STATUS_NO_MODEL);
        EXPECT_EQ(slm_client_load(c, nullptr, &err), SLM_STATUS_NO_MODEL);
        ASSERT_EQ(
            slm_client_import(c, shared(kStory).c_str(), "a", nullptr, nullptr, nullptr, &err), 0)
            << err.message;
        ASSERT_EQ(slm_client_import(c, shared("models/stories260K-q8_0.gguf").c_str(), "b", nullptr,
                                    nullptr, nullptr, &err),
                  0)
            << err.message;
        EXPECT_EQ(
            slm_client_import(c, shared(kStory).c_str(), "a", nullptr, nullptr, nullptr, &err),
            SLM_STATUS_FAILED); // the name is taken
        SlmDaemonStatus st = status();
        EXPECT_STREQ(st.default_model, "a"); // the first import
        EXPECT_STREQ(st.active_model, "");
        slm_daemon_status_clear(&st);
        // the first request loads the default model
        SlmFinish fin;
        ASSERT_EQ(slm_session_generate(s, "Once", &o, nullptr, nullptr, &fin, &err), 0)
            << err.message;
        st = status();
        EXPECT_STREQ(st.active_model, "a");
        slm_daemon_status_clear(&st);
        EXPECT_EQ(slm_client_load(c, "nosuch", &err), SLM_STATUS_NOT_FOUND);
        ASSERT_EQ(slm_client_load(c, "b", &err), 0) << err.message;
        ASSERT_EQ(slm_client_set_default(c, "b", &err), 0);
        EXPECT_EQ(slm_client_remove(c, "b", false, &err), SLM_STATUS_BUSY);
        EXPECT_NE(std::string(err.message).find("loaded"), std::string::npos) << err.message;
        ASSERT_EQ(slm_client_remove(c, "b", true, &err), 0) << err.message;
        EXPECT_TRUE(eventually([&] {
                SlmDaemonStatus now = status();
                bool ok = strcmp(now.active_model, "") == 0 && strcmp(now.default_model, "a") == 0;
                slm_daemon_status_clear(&now);
                return ok;
        }));
        // the session works on with the default model
        ASSERT_EQ(slm_session_generate(s, "Once", &o, nullptr, nullptr, &fin, &err), 0)
            << err.message;
        EXPECT_STREQ(fin.reason, "length");
        ASSERT_EQ(slm_client_unload(c, &err), 0);
        slm_session_free(s);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();
}

// ---- budgets: slmd reads a fake sysfs/procfs tree that the tests change while it runs ----

namespace
{

class Budget : public Daemon
{
      protected:
        std::string sys, proc;

        void SetUp() override
        {
                Daemon::SetUp();
                sys = dir + "/sys";
                proc = dir + "/proc";
                zone(40);
                put(sys + "/class/thermal/thermal_zone0/trip_point_0_type", "passive");
                put(sys + "/class/thermal/thermal_zone0/trip_point_0_temp", "80000");
                put(sys + "/class/thermal/thermal_zone0/trip_point_1_type", "critical");
                put(sys + "/class/thermal/thermal_zone0/trip_point_1_temp", "110000");
                supply(true, 90, "Charging");
                pressure(0.0, 0.0);
                put(proc + "/meminfo", "MemTotal: 16000000 kB\nMemAvailable: 8000000 kB");
        }

        void put(const std::string &path, const std::string &text)
        {
                std::string parent = path.substr(0, path.rfind('/'));
                ASSERT_EQ(run_cmd("mkdir -p '" + parent + "' && printf '%s\\n' '" + text + "' > '" +
                                  path + ".new' && mv '" + path + ".new' '" + path + "'"),
                          0);
        }

        void zone(int celsius)
        {
                put(sys + "/class/thermal/thermal_zone0/temp", std::to_string(celsius * 1000));
        }

        void supply(bool ac, int pct, const char *status)
        {
                put(sys + "/class/power_supply/AC/type", "Mains");
                put(sys + "/class/power_supply/AC/online", ac ? "1" : "0");
                put(sys + "/class/power_supply/BAT0/type", "Battery");
                put(sys + "/class/power_supply/BAT0/capacity", std::to_string(pct));
                put(sys + "/class/power_supply/BAT0/status", status);
        }

        void pressure(double some, double full)
        {
                char buf[256];
                snprintf(buf, sizeof(buf),
                         "some avg10=%.2f avg60=0.00 avg300=0.00 total=0\n"
                         "full avg10=%.2f avg60=0.00 avg300=0.00 total=0",
                         some, full);
                put(proc + "/pressure/memory", buf);
        }

        void start_budgeted(const std::string &extra_conf = "")
        {
                put(dir + "/slmd.conf", "[budget]\npoll-ms=100\n" + extra_conf);
                start(shared(kStory), { "--config", dir + "/slmd.conf", "--sysfs-root", sys,
                                        "--procfs-root", proc });
        }

        std::string budget_reason()
        {
                SlmDaemonStatus st = status();
                std::string r = st.budget_reason ? st.budget_reason : "";
                slm_daemon_status_clear(&st);
                return r;
        }

        std::string active_model()
        {
                SlmDaemonStatus st = status();
                std::string m = st.active_model ? st.active_model : "";
                slm_daemon_status_clear(&st);
                return m;
        }

        bool reason_becomes(const std::string &want)
        {
                return eventually([&] { return budget_reason().find(want) != std::string::npos; });
        }

        SlmSession *session(SlmClient *c, const char *priority)
        {
                SlmSessionOptions so = { nullptr, priority, 0 };
                SlmSession *s = nullptr;
                SlmClientError err;
                EXPECT_EQ(slm_client_create_session(c, &so, &s, &err), 0) << err.message;
                return s;
        }
};

} // namespace

// Heating the zone past its passive trip pauses background work, paces normal work and keeps
// the keyboard answered; cooling it resumes the paused stream. Each change is announced.
TEST_F(Budget, HeatPausesBackgroundAndKeepsTheKeyboardAnswered)
{
        start_budgeted();
        std::string monitor_log = dir + "/monitor.log";
        pid_t monitor = spawn({ "gdbus", "monitor", "--address", address, "--dest", "org.slmd.Slm1",
                                "--object-path", "/org/slmd/Slm1" },
                              monitor_log);
        EXPECT_EQ(budget_reason(), "cool");
        usleep(300 * 1000); // the monitor subscribes

        zone(85);
        ASSERT_TRUE(reason_becomes("hot: thermal zone 0")) << budget_reason();
        SlmDaemonStatus st = status();
        EXPECT_STREQ(st.thermal, "hot");
        slm_daemon_status_clear(&st);

        Stream bg;
        SlmFinish bg_fin = {};
        std::atomic<bool> bg_done{ false };
        std::thread background([&] {
                SlmClient *c = client();
                SlmSession *s = session(c, "background");
                SlmGenerateOptions o = greedy(20);
                EXPECT_EQ(
                    slm_session_generate(s, "Once upon a time", &o, collect, &bg, &bg_fin, nullptr),
                    0);
                bg_done = true;
                slm_session_free(s);
                slm_client_free(c);
        });
        usleep(600 * 1000);
        EXPECT_EQ(bg.tokens.load(), 0) << "background work ran while hot";

        // the keyboard is answered while the background stream waits
        SlmClient *kb = client();
        SlmSession *ks = session(kb, "interactive");
        char **words = nullptr;
        SlmClientError err;
        ASSERT_EQ(slm_session_suggest(ks, "Once upon a ", 3, &words, &err), 0) << err.message;
        ASSERT_NE(words[0], nullptr);
        EXPECT_STREQ(words[0], "time");
        slm_strv_free(words);
        EXPECT_FALSE(bg_done.load());

        // normal work is paced: 6 tokens at 5 tokens/s take at least a second
        SlmSession *ns = session(kb, "normal");
        Stream n;
        SlmFinish nfin;
        SlmGenerateOptions o = greedy(6);
        auto t0 = std::chrono::steady_clock::now();
        ASSERT_EQ(slm_session_generate(ns, "Once upon a time", &o, collect, &n, &nfin, nullptr), 0);
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        EXPECT_GE(secs, 0.9) << "normal work was not paced while hot";
        EXPECT_EQ(n.tokens.load(), 6);

        zone(40);
        ASSERT_TRUE(reason_becomes("cool"));
        background.join();
        EXPECT_EQ(bg.tokens.load(), 20);
        EXPECT_STREQ(bg_fin.reason, "length");
        slm_session_free(ns);
        slm_session_free(ks);
        slm_client_free(kb);

        kill(monitor, SIGTERM);
        wait_exit(monitor);
        std::string signals;
        run_cmd("cat '" + monitor_log + "'", &signals);
        EXPECT_NE(signals.find("BudgetChanged"), std::string::npos) << signals;
        EXPECT_NE(signals.find("hot: thermal zone 0 at or above 80.0"), std::string::npos)
            << signals;
        EXPECT_EQ(stop(), 0) << log();
}

// Unplugging the AC at a low battery makes background requests fail with Throttled; normal
// work goes on, and plugging it back in lifts the refusal.
TEST_F(Budget, LowBatteryThrottlesBackground)
{
        supply(true, 12, "Charging");
        start_budgeted("battery-low=20\n");
        SlmClient *c = client();
        SlmSession *bg = session(c, "background"), *nm = session(c, "normal");
        EXPECT_EQ(story(c, 5).empty(), false);
        Stream s;
        SlmFinish fin;
        SlmGenerateOptions o = greedy(5);
        SlmClientError err;
        ASSERT_EQ(slm_session_generate(bg, "Once", &o, collect, &s, &fin, &err), 0) << err.message;

        supply(false, 12, "Discharging");
        ASSERT_TRUE(reason_becomes("on battery below 20 %"));
        SlmDaemonStatus st = status();
        EXPECT_TRUE(st.background_refused);
        slm_daemon_status_clear(&st);
        EXPECT_EQ(slm_session_generate(bg, " upon", &o, collect, &s, &fin, &err),
                  SLM_STATUS_THROTTLED);
        EXPECT_STREQ(err.name, "org.slmd.Slm1.Error.Throttled");
        EXPECT_NE(std::string(err.message).find("on battery"), std::string::npos) << err.message;
        ASSERT_EQ(slm_session_generate(nm, "Once", &o, collect, &s, &fin, &err), 0) << err.message;

        supply(true, 12, "Charging");
        ASSERT_TRUE(reason_becomes("cool"));
        EXPECT_EQ(slm_session_generate(bg, " upon", &o, collect, &s, &fin, &err), 0) << err.message;
        slm_session_free(bg);
        slm_session_free(nm);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();
}

// Memory pressure first drops idle sessions' KV caches (recomputed from their tokens on next
// use, with the same result), then unloads the model; when it passes, the model comes back.
TEST_F(Budget, MemoryPressureDropsCachesThenUnloads)
{
        start_budgeted();
        SlmClient *c = client();
        std::string want = story(c, 30); // "Once upon a time" + 30 greedy tokens, from scratch

        SlmSession *a = session(c, "normal");
        SlmClientError err;
        ASSERT_EQ(slm_session_append(a, "Once upon a time", &err), 0) << err.message;
        pressure(25.0, 0.0);
        ASSERT_TRUE(reason_becomes("idle KV caches dropped"));
        ASSERT_TRUE(eventually([&] {
                std::string l = log();
                return l.find("budget: memory pressure") != std::string::npos;
        }));
        Stream s;
        SlmFinish fin;
        SlmGenerateOptions o = greedy(30);
        ASSERT_EQ(slm_session_generate(a, "", &o, collect, &s, &fin, &err), 0) << err.message;
        EXPECT_EQ(s.text, want) << "the dropped cache was not recomputed from the tokens";

        pressure(60.0, 30.0);
        ASSERT_TRUE(reason_becomes("model unloaded"));
        ASSERT_TRUE(eventually([&] { return active_model().empty(); })) << log();
        Stream s2;
        EXPECT_EQ(slm_session_generate(a, " The end.", &o, collect, &s2, &fin, &err),
                  SLM_STATUS_THROTTLED);
        SlmSession *refused = nullptr;
        EXPECT_EQ(slm_client_create_session(c, nullptr, &refused, &err), SLM_STATUS_THROTTLED);

        pressure(0.0, 0.0);
        ASSERT_TRUE(reason_becomes("cool"));
        EXPECT_EQ(story(c, 30), want);
        EXPECT_FALSE(active_model().empty());
        slm_session_free(a);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();
}

// An idle model goes after keep-alive; the next request loads it again.
TEST_F(Budget, KeepAliveUnloadsAnIdleModel)
{
        start_budgeted("keep-alive=1\n");
        SlmClient *c = client();
        std::string first = story(c, 10);
        EXPECT_FALSE(active_model().empty());
        ASSERT_TRUE(eventually([&] { return active_model().empty(); })) << log();
        EXPECT_NE(log().find("keep-alive"), std::string::npos);
        EXPECT_EQ(story(c, 10), first);
        EXPECT_FALSE(active_model().empty());
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();
}

// A uid the policy does not list cannot claim the interactive class: near the critical trip,
// where only interactive work runs, its "keyboard" waits like normal work until it cools.
TEST_F(Budget, InteractiveClassIsBoundedByPolicy)
{
        start_budgeted("interactive-users=nosuchuser;12345;\n");
        SlmClient *c = client();
        SlmSession *s = session(c, "interactive");
        zone(101);
        ASSERT_TRUE(reason_becomes("critical: thermal zone 0"));
        std::atomic<bool> answered{ false };
        std::thread kb([&] {
                char **words = nullptr;
                SlmClientError err;
                EXPECT_EQ(slm_session_suggest(s, "Once upon a", 3, &words, &err), 0) << err.message;
                slm_strv_free(words);
                answered = true;
        });
        usleep(600 * 1000);
        EXPECT_FALSE(answered.load()) << "a uid outside interactive-users ran as interactive";
        zone(40);
        kb.join();
        EXPECT_TRUE(answered.load());
        slm_session_free(s);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();
}

// The power profile comes from power-profiles-daemon (a python3-dbusmock mock on the test bus):
// power-saver halves the threads, and a change is applied at once.
TEST_F(Budget, PowerSaverProfileFromPowerProfilesDaemon)
{
        setenv("DBUS_SYSTEM_BUS_ADDRESS", address.c_str(), 1);
        pid_t ppd =
            spawn({ "/usr/bin/python3", "-m", "dbusmock", "--template", "power_profiles_daemon" },
                  dir + "/ppd.log");
        unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
        std::string call = "gdbus call --address '" + address +
                           "' --dest net.hadess.PowerProfiles --object-path "
                           "/net/hadess/PowerProfiles --method ";
        ASSERT_TRUE(eventually([&] {
                return run_cmd(call + "org.freedesktop.DBus.Properties.Get "
                                      "net.hadess.PowerProfiles ActiveProfile") == 0;
        })) << "the mock power-profiles-daemon did not start";
        start_budgeted(); // two threads
        SlmDaemonStatus st = status();
        EXPECT_EQ(st.budget_threads, 2);
        slm_daemon_status_clear(&st);

        ASSERT_EQ(run_cmd(call + "org.freedesktop.DBus.Properties.Set net.hadess.PowerProfiles "
                                 "ActiveProfile \"<'power-saver'>\""),
                  0);
        ASSERT_TRUE(reason_becomes("power-saver profile")) << budget_reason();
        st = status();
        EXPECT_EQ(st.budget_threads, 1);
        slm_daemon_status_clear(&st);
        SlmClient *c = client();
        EXPECT_FALSE(story(c, 10).empty()); // still serving, on one thread
        slm_client_free(c);

        ASSERT_EQ(run_cmd(call + "org.freedesktop.DBus.Properties.Set net.hadess.PowerProfiles "
                                 "ActiveProfile \"<'performance'>\""),
                  0);
        ASSERT_TRUE(reason_becomes("cool"));
        kill(ppd, SIGTERM);
        wait_exit(ppd);
        EXPECT_EQ(stop(), 0) << log();
}

// All sessions' KV caches stay under kv-cap-mb: a second session's cache pushes out the idle first
// one, which is recomputed from its tokens when used again, with the same result.
TEST_F(Budget, KvCapDropsTheLeastRecentlyUsedCache)
{
        // one story-model context is 0.6 MiB with an F32 cache (the default F16 halves it)
        start_budgeted("kv-cap-mb=1\n[daemon]\nkv-type=f32\n");
        SlmDaemonStatus st = status();
        EXPECT_NE(std::string(st.backend).find("KV cache F32"), std::string::npos) << st.backend;
        slm_daemon_status_clear(&st);
        SlmClient *c = client();
        std::string want = story(c, 20);
        SlmSession *a = session(c, "normal"), *b = session(c, "normal");
        SlmClientError err;
        ASSERT_EQ(slm_session_append(a, "Once upon a time", &err), 0) << err.message;
        EXPECT_EQ(log().find("KV cache of an idle session dropped"), std::string::npos);
        ASSERT_EQ(slm_session_append(b, "The end.", &err), 0) << err.message;
        ASSERT_TRUE(eventually([&] {
                return log().find("KV cache of an idle session dropped: over the 1 MiB cap") !=
                       std::string::npos;
        })) << log();
        Stream s;
        SlmFinish fin;
        SlmGenerateOptions o = greedy(20);
        ASSERT_EQ(slm_session_generate(a, "", &o, collect, &s, &fin, &err), 0) << err.message;
        EXPECT_EQ(s.text, want);
        slm_session_free(a);
        slm_session_free(b);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();
}

// A per-class cap from the configuration: background work at 5 tokens/s, normal work unpaced.
TEST_F(Budget, BackgroundPaceFromTheConfiguration)
{
        start_budgeted("background-pace=5\n");
        SlmClient *c = client();
        SlmSession *bg = session(c, "background"), *nm = session(c, "normal");
        SlmGenerateOptions o = greedy(6);
        SlmFinish fin;
        auto timed = [&](SlmSession *s) {
                Stream st;
                auto t0 = std::chrono::steady_clock::now();
                EXPECT_EQ(
                    slm_session_generate(s, "Once upon a time", &o, collect, &st, &fin, nullptr),
                    0);
                EXPECT_EQ(st.tokens.load(), 6);
                return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        };
        EXPECT_GE(timed(bg), 0.9);
        EXPECT_LT(timed(nm), 0.5);
        slm_session_free(bg);
        slm_session_free(nm);
        slm_client_free(c);
        EXPECT_EQ(stop(), 0) << log();
}
