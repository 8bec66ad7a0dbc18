// Json: values, escapes, and errors that carry the byte offset.
#include "formats/Json.h"

#include <gtest/gtest.h>

using namespace stc;

TEST(Json, ParsesNestedValues) {
  JsonValue v;
  Status st =
      parseJson(R"({"a": [1, -2.5e1, true, null], "b": {"c": "x\u00e9\n"}})",
                "t.json", v);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_TRUE(v.isObject());
  const JsonValue *a = v.get("a");
  ASSERT_TRUE(a && a->isArray());
  ASSERT_EQ(a->array.size(), 4u);
  EXPECT_TRUE(a->array[0].isInteger);
  EXPECT_EQ(a->array[0].integer, 1);
  EXPECT_FALSE(a->array[1].isInteger);
  EXPECT_DOUBLE_EQ(a->array[1].number, -25.0);
  EXPECT_TRUE(a->array[2].boolean);
  EXPECT_TRUE(a->array[3].isNull());
  EXPECT_EQ(v.get("b")->get("c")->string, "x\xc3\xa9\n");
}

TEST(Json, LargeIntegersStayExact) {
  JsonValue v;
  ASSERT_TRUE(parseJson("[9007199254740993]", "t", v).ok());
  EXPECT_EQ(v.array[0].integer, 9007199254740993LL);
}

TEST(Json, ErrorsNameFileAndOffset) {
  JsonValue v;
  Status st = parseJson("{\"a\": [1, 2,}", "cfg.json", v);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cfg.json: invalid JSON at byte 12"),
            std::string::npos)
      << st.message();
  EXPECT_FALSE(parseJson("{\"a\": 1} x", "t", v).ok());
  EXPECT_FALSE(parseJson("\"unterminated", "t", v).ok());
  EXPECT_FALSE(parseJson("", "t", v).ok());
  EXPECT_FALSE(parseJson("[01x]", "t", v).ok());
}

TEST(Json, DepthIsBounded) {
  std::string deep(1000, '[');
  JsonValue v;
  Status st = parseJson(deep, "t", v);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("nesting deeper"), std::string::npos);
}
