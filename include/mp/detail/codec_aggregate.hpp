// mp/detail/codec_aggregate.hpp - Codec<T> for aggregates without serialize():
// their fields are listed through structured bindings (the technique of
// Boost.PFR) and sent one after another, or as one memcpy when every field is
// sent as bytes and T has no padding.
//
// How the fields are found: the number of fields is the largest N for which
// `T{x1, ..., xN}` compiles with x converting to any type. GCC 12 counts each
// element of a C-array field (brace elision) and each base class, so a class
// with a base is detected and rejected, and the count is confirmed by
// parenthesised aggregate initialisation `T(x1, ..., xN)`, which never elides
// braces: a C-array field of two or more elements fails it and is rejected; a
// one-element C array shows in the bindings' types and is rejected there. A
// count that is still wrong (a reference member beside a move-only one) fails
// to compile at the structured binding: never a wrong encoding.
// Bit-fields are sent as their declared type, field by field.
#pragma once

#include <mp/detail/codec_containers.hpp>

#include <exception>

namespace mp::detail {

/// Most fields an aggregate may have to be sent without serialize().
inline constexpr std::size_t max_aggregate_fields = 32;

// --- counting the fields --------------------------------------------------------
// The converters are named only in unevaluated operands; their bodies never run
// (Clang wants them defined when a constexpr constructor of a field uses them).

/// Converts to an lvalue or an xvalue of any type (copyable and reference fields).
struct AnyRef {
  template <class U>
  [[noreturn]] operator U&() const&& noexcept {
    std::terminate();
  }
  template <class U>
  [[noreturn]] operator U&&() const&& noexcept {
    std::terminate();
  }
};

/// Converts to a prvalue of any type (move-only and immovable fields).
struct AnyValue {
  template <class U>
  [[noreturn]] operator U() const&& noexcept {
    std::terminate();
  }
};

/// Converts only to a base class of T: `T{AnyBaseOf<T>{}}` compiles when T has one.
template <class T>
struct AnyBaseOf {
  template <class U>
    requires(std::is_base_of_v<U, T> && !std::is_same_v<U, T>)
  [[noreturn]] operator U&() const&& noexcept {
    std::terminate();
  }
};

template <std::size_t, class A>
using Nth = A;

template <class T, std::size_t... I>
consteval bool brace_initializable(std::index_sequence<I...>) {
  return requires { T{Nth<I, AnyRef>{}...}; } || requires { T{Nth<I, AnyValue>{}...}; };
}

/// Whether T takes N values without brace elision: `T(x1, ..., xN)`, or, where
/// the compiler lacks parenthesised aggregate initialisation (Clang before 16),
/// `T{{x1}, ..., {xN}}`.
template <class T, std::size_t... I>
consteval bool initializable_without_elision(std::index_sequence<I...>) {
#if defined(__cpp_aggregate_paren_init)
  return requires { T(Nth<I, AnyRef>{}...); } || requires { T(Nth<I, AnyValue>{}...); };
#else
  return requires { T{{Nth<I, AnyValue>{}}...}; } || requires { T{{Nth<I, AnyRef>{}}...}; };
#endif
}

/// Largest N <= max_aggregate_fields + 1 such that T{x1..xN} compiles, or
/// variable_size when none does.
template <class T, std::size_t... N>
consteval std::size_t brace_count(std::index_sequence<N...>) {
  std::size_t best = variable_size;
  ((brace_initializable<T>(std::make_index_sequence<N>{}) ? void(best = N) : void()), ...);
  return best;
}

/// Why an aggregate cannot be listed field by field (ok when it can).
enum class AggregateShape { ok, union_type, base_class, uncountable, too_many_fields };

template <class T>
consteval AggregateShape aggregate_shape() {
  constexpr std::size_t n = brace_count<T>(std::make_index_sequence<max_aggregate_fields + 2>{});
  if constexpr (std::is_union_v<T>) return AggregateShape::union_type;
  else if constexpr (requires { T{AnyBaseOf<T>{}}; }) return AggregateShape::base_class;
  else if constexpr (n == variable_size || (n == 0 && !std::is_empty_v<T>)) return AggregateShape::uncountable;
  else if constexpr (n > max_aggregate_fields) return AggregateShape::too_many_fields;
  else if constexpr (n >= 2 && !initializable_without_elision<T>(std::make_index_sequence<n>{}))
    return AggregateShape::uncountable;  // a C-array field: GCC counted its elements
  else return AggregateShape::ok;
}

template <class T>
inline constexpr std::size_t field_count = brace_count<T>(std::make_index_sequence<max_aggregate_fields + 2>{});

// --- listing the fields ---------------------------------------------------------
template <class... Fs>
struct TypeList {};

// MP_DETAIL_FIELDS_N(X) expands to X(a0), ..., X(aN-1).
#define MP_DETAIL_NAME(a) a
#define MP_DETAIL_TYPE(a) decltype(a)
#define MP_DETAIL_FIELDS_1(X) X(a0)
#define MP_DETAIL_FIELDS_2(X) MP_DETAIL_FIELDS_1(X), X(a1)
#define MP_DETAIL_FIELDS_3(X) MP_DETAIL_FIELDS_2(X), X(a2)
#define MP_DETAIL_FIELDS_4(X) MP_DETAIL_FIELDS_3(X), X(a3)
#define MP_DETAIL_FIELDS_5(X) MP_DETAIL_FIELDS_4(X), X(a4)
#define MP_DETAIL_FIELDS_6(X) MP_DETAIL_FIELDS_5(X), X(a5)
#define MP_DETAIL_FIELDS_7(X) MP_DETAIL_FIELDS_6(X), X(a6)
#define MP_DETAIL_FIELDS_8(X) MP_DETAIL_FIELDS_7(X), X(a7)
#define MP_DETAIL_FIELDS_9(X) MP_DETAIL_FIELDS_8(X), X(a8)
#define MP_DETAIL_FIELDS_10(X) MP_DETAIL_FIELDS_9(X), X(a9)
#define MP_DETAIL_FIELDS_11(X) MP_DETAIL_FIELDS_10(X), X(a10)
#define MP_DETAIL_FIELDS_12(X) MP_DETAIL_FIELDS_11(X), X(a11)
#define MP_DETAIL_FIELDS_13(X) MP_DETAIL_FIELDS_12(X), X(a12)
#define MP_DETAIL_FIELDS_14(X) MP_DETAIL_FIELDS_13(X), X(a13)
#define MP_DETAIL_FIELDS_15(X) MP_DETAIL_FIELDS_14(X), X(a14)
#define MP_DETAIL_FIELDS_16(X) MP_DETAIL_FIELDS_15(X), X(a15)
#define MP_DETAIL_FIELDS_17(X) MP_DETAIL_FIELDS_16(X), X(a16)
#define MP_DETAIL_FIELDS_18(X) MP_DETAIL_FIELDS_17(X), X(a17)
#define MP_DETAIL_FIELDS_19(X) MP_DETAIL_FIELDS_18(X), X(a18)
#define MP_DETAIL_FIELDS_20(X) MP_DETAIL_FIELDS_19(X), X(a19)
#define MP_DETAIL_FIELDS_21(X) MP_DETAIL_FIELDS_20(X), X(a20)
#define MP_DETAIL_FIELDS_22(X) MP_DETAIL_FIELDS_21(X), X(a21)
#define MP_DETAIL_FIELDS_23(X) MP_DETAIL_FIELDS_22(X), X(a22)
#define MP_DETAIL_FIELDS_24(X) MP_DETAIL_FIELDS_23(X), X(a23)
#define MP_DETAIL_FIELDS_25(X) MP_DETAIL_FIELDS_24(X), X(a24)
#define MP_DETAIL_FIELDS_26(X) MP_DETAIL_FIELDS_25(X), X(a25)
#define MP_DETAIL_FIELDS_27(X) MP_DETAIL_FIELDS_26(X), X(a26)
#define MP_DETAIL_FIELDS_28(X) MP_DETAIL_FIELDS_27(X), X(a27)
#define MP_DETAIL_FIELDS_29(X) MP_DETAIL_FIELDS_28(X), X(a28)
#define MP_DETAIL_FIELDS_30(X) MP_DETAIL_FIELDS_29(X), X(a29)
#define MP_DETAIL_FIELDS_31(X) MP_DETAIL_FIELDS_30(X), X(a30)
#define MP_DETAIL_FIELDS_32(X) MP_DETAIL_FIELDS_31(X), X(a31)
// Binds the N fields of v and calls f(TypeList<declared types>{}, fields...).
#define MP_DETAIL_VISIT(N)                                                                 \
  else if constexpr (n == N) {                                                             \
    auto& [MP_DETAIL_FIELDS_##N(MP_DETAIL_NAME)] = v;                                      \
    return f(TypeList<MP_DETAIL_FIELDS_##N(MP_DETAIL_TYPE)>{}, MP_DETAIL_FIELDS_##N(MP_DETAIL_NAME)); \
  }

template <std::size_t n, class T, class F>
constexpr decltype(auto) visit_fields_upto_16(T& v, F&& f) {
  if constexpr (n == 0) return f(TypeList<>{});
  MP_DETAIL_VISIT(1) MP_DETAIL_VISIT(2) MP_DETAIL_VISIT(3) MP_DETAIL_VISIT(4)
  MP_DETAIL_VISIT(5) MP_DETAIL_VISIT(6) MP_DETAIL_VISIT(7) MP_DETAIL_VISIT(8)
  MP_DETAIL_VISIT(9) MP_DETAIL_VISIT(10) MP_DETAIL_VISIT(11) MP_DETAIL_VISIT(12)
  MP_DETAIL_VISIT(13) MP_DETAIL_VISIT(14) MP_DETAIL_VISIT(15) MP_DETAIL_VISIT(16)
}

template <std::size_t n, class T, class F>
constexpr decltype(auto) visit_fields_upto_32(T& v, F&& f) {
  if constexpr (n <= 16) return visit_fields_upto_16<n>(v, f);
  MP_DETAIL_VISIT(17) MP_DETAIL_VISIT(18) MP_DETAIL_VISIT(19) MP_DETAIL_VISIT(20)
  MP_DETAIL_VISIT(21) MP_DETAIL_VISIT(22) MP_DETAIL_VISIT(23) MP_DETAIL_VISIT(24)
  MP_DETAIL_VISIT(25) MP_DETAIL_VISIT(26) MP_DETAIL_VISIT(27) MP_DETAIL_VISIT(28)
  MP_DETAIL_VISIT(29) MP_DETAIL_VISIT(30) MP_DETAIL_VISIT(31) MP_DETAIL_VISIT(32)
}

/// Calls f(TypeList<declared field types>{}, fields...) on an aggregate whose
/// shape is ok. The fields are lvalues, const when v is; f takes them by const
/// reference (a bit-field binds only to that).
template <class T, class F>
constexpr decltype(auto) visit_fields(T& v, F&& f) {
  return visit_fields_upto_32<field_count<std::remove_const_t<T>>>(v, f);
}

#undef MP_DETAIL_VISIT
#undef MP_DETAIL_FIELDS_32
#undef MP_DETAIL_FIELDS_31
#undef MP_DETAIL_FIELDS_30
#undef MP_DETAIL_FIELDS_29
#undef MP_DETAIL_FIELDS_28
#undef MP_DETAIL_FIELDS_27
#undef MP_DETAIL_FIELDS_26
#undef MP_DETAIL_FIELDS_25
#undef MP_DETAIL_FIELDS_24
#undef MP_DETAIL_FIELDS_23
#undef MP_DETAIL_FIELDS_22
#undef MP_DETAIL_FIELDS_21
#undef MP_DETAIL_FIELDS_20
#undef MP_DETAIL_FIELDS_19
#undef MP_DETAIL_FIELDS_18
#undef MP_DETAIL_FIELDS_17
#undef MP_DETAIL_FIELDS_16
#undef MP_DETAIL_FIELDS_15
#undef MP_DETAIL_FIELDS_14
#undef MP_DETAIL_FIELDS_13
#undef MP_DETAIL_FIELDS_12
#undef MP_DETAIL_FIELDS_11
#undef MP_DETAIL_FIELDS_10
#undef MP_DETAIL_FIELDS_9
#undef MP_DETAIL_FIELDS_8
#undef MP_DETAIL_FIELDS_7
#undef MP_DETAIL_FIELDS_6
#undef MP_DETAIL_FIELDS_5
#undef MP_DETAIL_FIELDS_4
#undef MP_DETAIL_FIELDS_3
#undef MP_DETAIL_FIELDS_2
#undef MP_DETAIL_FIELDS_1
#undef MP_DETAIL_TYPE
#undef MP_DETAIL_NAME

struct ListTypes {
  template <class List, class... Fs>
  List operator()(List types, const Fs&...) const {
    return types;
  }
};

/// The declared types of T's fields, in order, as a TypeList (a reference
/// member keeps its &, a const member its const).
template <class T>
using field_types = decltype(visit_fields(std::declval<T&>(), ListTypes{}));

// --- rejections -------------------------------------------------------------------
template <AggregateShape S>
struct RejectAggregateShape {
  template <class T>
  static void reject() {
    if constexpr (S == AggregateShape::union_type) {
      static_assert(always_false<T>,
                    "mp cannot send a union: it cannot tell which member is active. Use a std::variant, or "
                    "specialise mp::codec<T> for it (see <mp/codec.hpp>).");
    } else if constexpr (S == AggregateShape::base_class) {
      static_assert(always_false<T>,
                    "mp cannot send this aggregate field by field: it has a base class, and mp lists the fields "
                    "of simple aggregates only. Add `template <class Archive> void serialize(Archive& ar) { "
                    "ar(field1, field2); }` to it (naming the base's fields too), or specialise mp::codec<T> "
                    "(see <mp/codec.hpp>).");
    } else if constexpr (S == AggregateShape::too_many_fields) {
      static_assert(always_false<T>,
                    "mp cannot send this aggregate field by field: it has more than 32 fields, and mp lists the "
                    "fields of simple aggregates only. Add `template <class Archive> void serialize(Archive& ar) "
                    "{ ar(field1, field2); }` to it, or specialise mp::codec<T> (see <mp/codec.hpp>).");
    } else {
      static_assert(always_false<T>,
                    "mp cannot send this aggregate field by field: it has a C-array field (which the compiler "
                    "counts element by element), or a reference member, or a field that cannot be initialised "
                    "from a value of its type. Make a C-array field a std::array, or add `template <class "
                    "Archive> void serialize(Archive& ar) { ar(field1, field2); }` to it, or specialise "
                    "mp::codec<T> (see <mp/codec.hpp>).");
    }
  }
};

/// Rejections of one field; the field's type F shows in the instantiation note.
template <class F>
struct RejectReferenceField {
  template <class T>
  static void reject() {
    static_assert(always_false<T>,
                  "mp cannot send an aggregate with a reference member (its type is F in the note above): it "
                  "would not refer to the same object in another process. Make the member a value, or add a "
                  "serialize() member that sends the referred-to value.");
  }
};

template <class F>
struct RejectArrayField {
  template <class T>
  static void reject() {
    static_assert(always_false<T>,
                  "mp cannot send this aggregate field by field: it has a C-array field (its type is F in the note "
                  "above). Make the field a std::array, or add `template <class Archive> void serialize(Archive& "
                  "ar) { ar(field1, field2); }` to it.");
  }
};

template <class F>
struct RejectUnsendableField {
  template <class T>
  static void reject() {
    using FC = Codec<std::remove_cv_t<F>>;
    const std::remove_cv_t<F>* none = nullptr;  // never called: reject() exists to fail compilation
    (void)FC::size(*none);                     // the field's own rejection says why and how to fix it
    (void)FC::decode(*static_cast<Reader*>(nullptr));
    static_assert(always_false<T>,
                  "mp cannot send this aggregate: the type of one of its fields (F in the note above) cannot be "
                  "sent.");
  }
};

template <class F>
consteval bool field_sendable() {
  if constexpr (std::is_reference_v<F> || std::is_array_v<F>) return false;
  else return Codec<std::remove_cv_t<F>>::sendable;
}

template <class F>
using FieldRejection = std::conditional_t<std::is_reference_v<F>, RejectReferenceField<F>,
                                          std::conditional_t<std::is_array_v<F>, RejectArrayField<F>,
                                                             RejectUnsendableField<F>>>;

/// The rejection of the first field that cannot be sent, or void.
template <class... Fs>
struct FirstBadField {
  using type = void;
};
template <class F, class... Rest>
struct FirstBadField<F, Rest...> {
  using type = std::conditional_t<field_sendable<F>(), typename FirstBadField<Rest...>::type, FieldRejection<F>>;
};

// --- the codec --------------------------------------------------------------------
struct SizeOfFields {
  template <class List, class... Fs>
  std::size_t operator()(List, const Fs&... fs) const {
    return (std::size_t{0} + ... + detail::encoded_size(fs));
  }
};

/// An aggregate whose fields Fs... can all be sent. When every field is sent
/// as bytes, T is trivially copyable and the fields fill T exactly (no
/// padding between or after them), T is sent as one memcpy; otherwise field by
/// field, so padding is never copied.
template <class T, class... Fs>
struct FieldwiseCodec {
  static constexpr bool sendable = true;
  static constexpr bool bitwise = std::is_trivially_copyable_v<T> && sizeof...(Fs) != 0 &&
                                  (Codec<std::remove_cv_t<Fs>>::bitwise && ...) &&
                                  (std::size_t{0} + ... + sizeof(Fs)) == sizeof(T);
  static constexpr std::size_t fixed = bitwise ? sizeof(T)
                                       : ((Codec<std::remove_cv_t<Fs>>::fixed != variable_size) && ...)
                                           ? (std::size_t{0} + ... + Codec<std::remove_cv_t<Fs>>::fixed)
                                           : variable_size;
  static constexpr std::size_t min = (std::size_t{0} + ... + Codec<std::remove_cv_t<Fs>>::min);

  static std::size_t size(const T& v) {
    if constexpr (fixed != variable_size) {
      return fixed;
    } else {
      return visit_fields(v, SizeOfFields{});
    }
  }
  static std::byte* encode(std::byte* out, const T& v) {
    if constexpr (bitwise) {
      std::memcpy(out, std::addressof(v), sizeof(T));
      return out + sizeof(T);
    } else {
      visit_fields(v, [&out](auto, const auto&... fs) { ((out = detail::encode_to(out, fs)), ...); });
      return out;
    }
  }
// A bit-field is initialised from a value of its declared type: its width is
// the sender's, so the value fits (GCC's -Wconversion cannot know that).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
  static T decode([[maybe_unused]] Reader& r) {
    if constexpr (bitwise) {
      return r.read_raw<T>();
    } else {
      return T{Codec<std::remove_cv_t<Fs>>::decode(r)...};  // a braced list is evaluated left to right
    }
  }
#pragma GCC diagnostic pop
};

template <class T, class List>
struct FieldsCodec;
template <class T, class... Fs>
struct FieldsCodec<T, TypeList<Fs...>> {
  using bad = typename FirstBadField<Fs...>::type;
  using type = std::conditional_t<std::is_void_v<bad>, FieldwiseCodec<T, Fs...>, RejectedCodec<T, bad>>;
};

template <class T, AggregateShape S = aggregate_shape<T>()>
struct AggregateCodec {
  using type = RejectedCodec<T, RejectAggregateShape<S>>;
};
template <class T>
struct AggregateCodec<T, AggregateShape::ok> {
  using type = typename FieldsCodec<T, field_types<T>>::type;
};

template <class T>
struct Codec<T, Kind::aggregate> : AggregateCodec<T>::type {};

}  // namespace mp::detail
