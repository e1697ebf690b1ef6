// expect: Bind the captured values with mp::partial
// expect: mp::partial(&Class::method, object)
// expect-gnu: Analyzer::run(mp::Pool&)::<lambda(int)>
// `this` is an address: the worker would read the parent's object as it was at fork, or nothing.
#include <mp/pool.hpp>

#include <vector>

struct Analyzer {
  std::vector<int> v{1, 2, 3};
  std::vector<int> run(mp::Pool& p) {
    return p.map([this](int i) { return v[static_cast<std::size_t>(i)] * 2; }, std::vector<int>{0, 1, 2});
  }
};

int main() {
  mp::Pool pool(2);
  Analyzer a;
  return static_cast<int>(a.run(pool).size());
}
