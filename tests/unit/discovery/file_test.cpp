// File discovery: the format, and a real file changed the ways editors and tools change files.
#include "discovery/file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "servers.h"

namespace proxer::discovery {
namespace {

using namespace testing;

TEST(FileFormat, LinesCommentsAndWeights) {
  std::string err;
  auto set = parse_endpoints_file(
      "# endpoints\n"
      "10.0.0.1:8080\n"
      "\n"
      "  10.0.0.2:8080   5   # heavier\n"
      "[fd00::3]:80 2\r\n"
      "Backend.Internal:9000#not-a-comment-start\n",
      &err);
  ASSERT_FALSE(set) << "'#' inside a token is part of it";
  EXPECT_EQ(err.substr(0, 7), "line 6:") << err;

  set = parse_endpoints_file(
      "# endpoints\n10.0.0.1:8080\n\n  10.0.0.2:8080   5   # heavier\n[fd00::3]:80 2\r\n"
      "Backend.Internal:9000\n",
      &err);
  ASSERT_TRUE(set) << err;
  EXPECT_EQ(*set, (std::vector<Target>{{"10.0.0.1", 8080, 1},
                                       {"10.0.0.2", 8080, 5},
                                       {"fd00::3", 80, 2},
                                       {"backend.internal", 9000, 1}}));
  set = parse_endpoints_file("", &err);
  ASSERT_TRUE(set);
  EXPECT_TRUE(set->empty());
  set = parse_endpoints_file("# nothing\n   \n", &err);
  ASSERT_TRUE(set);
  EXPECT_TRUE(set->empty());
}

TEST(FileFormat, ErrorsNameTheLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"10.0.0.1:80\n10.0.0.2\n", "line 2: expected host:port"},
      {"10.0.0.1:80 0\n", "line 1: weight out of range"},
      {"10.0.0.1:80 1001\n", "line 1: weight out of range"},
      {"\n\n10.0.0.1:80 x\n", "line 3: bad weight"},
      {"10.0.0.1:80 1 2\n", "line 1: expected 'host:port [weight]'"},
      {"10.0.0.1:0\n", "line 1: port out of range"},
      {"10.0.0.1:65536\n", "line 1: port out of range"},
      {"fd00::1:80\n", "line 1: IPv6 addresses need brackets"},
      {"bad_h@st:80\n", "line 1: bad character"},
      {R"({"host":"a","port":1})", "line 1: expected 'host:port [weight]', not JSON"},
  };
  for (const auto& [text, want] : cases) {
    std::string err;
    EXPECT_FALSE(parse_endpoints_file(text, &err)) << text;
    EXPECT_EQ(err.find(want), 0u) << text << " -> " << err;
  }
}

FileOptions options(const std::string& path) {
  FileOptions o;
  o.path = path;
  o.settle = 20ms;
  o.poll_interval = 30s;  // changes within seconds can only come from inotify
  return o;
}

TEST(File, InitialSetThenEveryKindOfChange) {
  TempDir dir;
  const auto path = dir.file("endpoints");
  write_file_atomic(path, "10.0.0.1:80\n");
  net::io_context ioc;
  LogCapture logs;
  Updates u;
  FileProvider p(ioc.get_executor(), options(path));
  p.start(u.callback());
  ASSERT_TRUE(u.wait_for(ioc, {{"10.0.0.1", 80, 1}}, 3s));

  // Replaced by rename (editors, mv, configuration tools).
  write_file_atomic(path, "10.0.0.1:80\n10.0.0.2:80 3\n");
  ASSERT_TRUE(u.wait_for(ioc, {{"10.0.0.1", 80, 1}, {"10.0.0.2", 80, 3}}, 3s));

  // Written in place.
  write_file(path, "10.0.0.2:80 3\n");
  ASSERT_TRUE(u.wait_for(ioc, {{"10.0.0.2", 80, 3}}, 3s));

  // A bad file keeps the last set and says which line is wrong, once.
  write_file_atomic(path, "10.0.0.2:80 3\n10.0.0.4\n");
  run_for(ioc, 300ms);
  write_file_atomic(path, "10.0.0.2:80 3\n10.0.0.4\n# touched\n");
  ASSERT_TRUE(Updates::wait(
      ioc, [&] { return logs.count("line 2: expected host:port") == 1; }, 3s));
  run_for(ioc, 300ms);
  EXPECT_EQ(logs.count("line 2: expected host:port"), 1u);
  EXPECT_EQ(u.all.size(), 3u);

  // Fixed: the new set, and the recovery logged.
  write_file_atomic(path, "10.0.0.2:80 3\n10.0.0.4:80\n");
  ASSERT_TRUE(u.wait_for(ioc, {{"10.0.0.2", 80, 3}, {"10.0.0.4", 80, 1}}, 3s));
  EXPECT_EQ(logs.count("recovered"), 1u);

  // Deleted: an error, the set stays. Back: read again.
  std::filesystem::remove(path);
  ASSERT_TRUE(Updates::wait(
      ioc, [&] { return logs.count("cannot open") == 1; }, 3s));
  EXPECT_EQ(u.all.size(), 4u);
  write_file_atomic(path, "10.0.0.5:80\n");
  ASSERT_TRUE(u.wait_for(ioc, {{"10.0.0.5", 80, 1}}, 3s));

  // Emptied: a valid empty set.
  write_file_atomic(path, "# no endpoints\n");
  ASSERT_TRUE(u.wait_for(ioc, {}, 3s));

  // Events for other files in the directory change nothing.
  const auto before = u.all.size();
  write_file_atomic(dir.file("other"), "x");
  run_for(ioc, 200ms);
  EXPECT_EQ(u.all.size(), before);
}

TEST(File, MissingAtStartThenCreated) {
  TempDir dir;
  const auto path = dir.file("endpoints");
  net::io_context ioc;
  Updates u;
  FileProvider p(ioc.get_executor(), options(path));
  p.start(u.callback());
  run_for(ioc, 200ms);
  EXPECT_TRUE(u.all.empty());  // an error is no update
  write_file_atomic(path, "10.0.0.1:80\n");
  EXPECT_TRUE(u.wait_for(ioc, {{"10.0.0.1", 80, 1}}, 3s));
}

TEST(File, SymlinkSwapAndPolling) {
  // Kubernetes' atomic writer: endpoints -> ..data/endpoints, and ..data is swapped by rename.
  TempDir dir;
  std::filesystem::create_directory(dir.file("v1"));
  std::filesystem::create_directory(dir.file("v2"));
  write_file(dir.file("v1/endpoints"), "10.0.0.1:80\n");
  write_file(dir.file("v2/endpoints"), "10.0.0.2:80\n");
  std::filesystem::create_directory_symlink("v1", dir.file("..data"));
  std::filesystem::create_symlink("..data/endpoints", dir.file("endpoints"));
  net::io_context ioc;
  Updates u;
  FileProvider p(ioc.get_executor(), options(dir.file("endpoints")));
  p.start(u.callback());
  ASSERT_TRUE(u.wait_for(ioc, {{"10.0.0.1", 80, 1}}, 3s));
  std::filesystem::create_directory_symlink("v2", dir.file("..data_tmp"));
  std::filesystem::rename(dir.file("..data_tmp"), dir.file("..data"));
  ASSERT_TRUE(u.wait_for(ioc, {{"10.0.0.2", 80, 1}}, 3s));

  // A change inotify on the link's directory cannot see (inside v2) is found by polling.
  Updates polled;
  auto o = options(dir.file("endpoints"));
  o.poll_interval = 200ms;
  FileProvider p2(ioc.get_executor(), o);
  p2.start(polled.callback());
  ASSERT_TRUE(polled.wait_for(ioc, {{"10.0.0.2", 80, 1}}, 3s));
  write_file(dir.file("v2/endpoints"), "10.0.0.3:80\n");
  EXPECT_TRUE(polled.wait_for(ioc, {{"10.0.0.3", 80, 1}}, 3s));
}

TEST(File, StopInsideTheCallbackAndTooLargeFiles) {
  TempDir dir;
  const auto path = dir.file("endpoints");
  write_file_atomic(path, "10.0.0.1:80\n");
  net::io_context ioc;
  int calls = 0;
  auto p = std::make_unique<FileProvider>(ioc.get_executor(), options(path));
  p->start([&](const std::vector<Target>&) {
    ++calls;
    p.reset();
  });
  ASSERT_TRUE(Updates::wait(
      ioc, [&] { return calls > 0; }, 3s));
  write_file_atomic(path, "10.0.0.2:80\n");
  run_for(ioc, 300ms);
  EXPECT_EQ(calls, 1);

  LogCapture logs;
  auto o = options(path);
  o.max_bytes = 8;
  Updates u;
  FileProvider big(ioc.get_executor(), o);
  big.start(u.callback());
  EXPECT_TRUE(Updates::wait(
      ioc, [&] { return logs.count("larger than 8 bytes") == 1; }, 3s));
  EXPECT_TRUE(u.all.empty());
}

TEST(File, Options) {
  EXPECT_NE(validate(FileOptions{}), "");
  EXPECT_EQ(validate(options("/tmp/x")), "");
  EXPECT_NE(validate(options("/tmp/")), "");
  net::io_context ioc;
  EXPECT_THROW(FileProvider(ioc.get_executor(), FileOptions{}), std::invalid_argument);
}

}  // namespace
}  // namespace proxer::discovery
