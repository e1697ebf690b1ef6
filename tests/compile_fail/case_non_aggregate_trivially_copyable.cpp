// expect: it is trivially copyable but not an aggregate
// expect: mp::is_address_free<T> = true;
// expect-gnu: [with T = Handle]
// A class with private state may hold an address mp cannot see.
#include <mp/codec.hpp>

class Handle {
public:
  explicit Handle(int v) : v_(v) {}
  [[nodiscard]] int value() const { return v_; }

private:
  int v_;
};

int main() { return static_cast<int>(mp::dumps(Handle(1)).size()); }
