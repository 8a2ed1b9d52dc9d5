// The report: Linux/Dune ratios only where Dune measured the same thing; JSON fields.
#include <gtest/gtest.h>

#include "appel_li.h"

namespace appel_li {
namespace {

Result result(const char *primitive, const char *backend, double median, size_t pages,
              std::optional<double> fraction = std::nullopt) {
  Result r;
  r.primitive = primitive;
  r.backend = backend;
  r.cycles.median = r.cycles.p10 = r.cycles.p90 = median;
  r.cycles.reps = 5;
  r.pages = pages;
  r.fraction = fraction;
  return r;
}

TEST(Ratios, AbsentWithoutDune) {
  std::vector<Result> rs = {result("appel1", "mprotect", 9000, 100),
                            result("appel1", "uffd", 12000, 100)};
  add_linux_dune_ratios(rs);
  for (const Result &r : rs) EXPECT_FALSE(r.linux_dune_ratio.has_value());
}

TEST(Ratios, ReferenceOverDuneOnDuneResultsForTheSamePrimitiveAndSize) {
  std::vector<Result> rs = {
      result("appel1", "mprotect", 9000, 100), result("appel1", "dune", 3000, 100),
      result("appel1", "uffd", 12000, 100),                                     // not the reference
      result("dirty", "mprotect", 500, 1024, 0.1), result("dirty", "dune", 250, 1024, 0.1),
      result("dirty", "dune", 800, 4096, 0.1),  // mprotect has no 4096
      result("accessed", "dune", 5000, 1024)};  // no Linux backend has it
  add_linux_dune_ratios(rs);
  EXPECT_FALSE(rs[0].linux_dune_ratio.has_value());  // Linux results carry none
  ASSERT_TRUE(rs[1].linux_dune_ratio.has_value());
  EXPECT_DOUBLE_EQ(*rs[1].linux_dune_ratio, 3.0);
  EXPECT_FALSE(rs[2].linux_dune_ratio.has_value());
  ASSERT_TRUE(rs[4].linux_dune_ratio.has_value());
  EXPECT_DOUBLE_EQ(*rs[4].linux_dune_ratio, 2.0);
  EXPECT_FALSE(rs[5].linux_dune_ratio.has_value());
  EXPECT_FALSE(rs[6].linux_dune_ratio.has_value());
  EXPECT_STREQ(kLinuxReference, "mprotect");
}

TEST(Json, CarriesPlatformBackendsAndNullRatios) {
  std::vector<Result> rs = {result("prot1", "mprotect", 3000, 1)};
  std::vector<dunegc::paging::BackendInfo> avail = {{"mprotect", true, ""},
                                                    {"softdirty", false, "no \"bit\" 55"}};
  std::vector<std::unique_ptr<dunegc::paging::Backend>> opened;
  opened.push_back(dunegc::paging::open("mprotect"));
  ASSERT_NE(opened[0], nullptr);
  std::string j = to_json(rs, avail, opened, Config{});
  for (const char *needle :
       {"\"benchmark\": \"appel-li\"", "\"platform\": {", "\"virt\": ", "\"cpu_model\": ",
        "\"backends\": [{\"name\": \"mprotect\", \"available\": true, \"features\": {",
        "{\"name\": \"softdirty\", \"available\": false, \"why\": \"no \\\"bit\\\" 55\"}",
        "\"primitive\": \"prot1\"", "\"median_cycles\": 3000", "\"p10_cycles\": 3000",
        "\"p90_cycles\": 3000", "\"reps\": 5", "\"linux_dune_ratio\": null",
        "\"linux_reference\": \"mprotect\""})
    EXPECT_NE(j.find(needle), std::string::npos) << needle << "\nin: " << j;
  EXPECT_EQ(j.back(), '}');
}

}  // namespace
}  // namespace appel_li
