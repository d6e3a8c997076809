// slot_list.h: a doubly linked list threaded through the slots of a
// fixed-capacity table by slot number (an age or LRU order), so keeping the
// order never allocates. Each record holds its own links in two uint32_t
// fields, named by member pointers, so a record can sit on several lists.
// The list itself is only its two ends.
#pragma once

#include <cstdint>

namespace exfilwatch {

template <auto Prev, auto Next, uint32_t kNone = UINT32_MAX>
struct SlotList {
  uint32_t head = kNone;
  uint32_t tail = kNone;

  bool empty() const { return head == kNone; }

  template <class Slots>
  void pushBack(Slots& slots, uint32_t i) {
    append<Prev, Next>(slots, i, head, tail);
  }
  template <class Slots>
  void pushFront(Slots& slots, uint32_t i) {
    append<Next, Prev>(slots, i, tail, head);  // the same, seen from the other end
  }

  template <class Slots>
  void unlink(Slots& slots, uint32_t i) {
    auto& r = slots[i];
    if (r.*Prev != kNone) {
      slots[r.*Prev].*Next = r.*Next;
    } else {
      head = r.*Next;
    }
    if (r.*Next != kNone) {
      slots[r.*Next].*Prev = r.*Prev;
    } else {
      tail = r.*Prev;
    }
    r.*Prev = r.*Next = kNone;
  }

 private:
  // Links `i` beyond the `last` end: P back to the old end, N to none.
  template <auto P, auto N, class Slots>
  static void append(Slots& slots, uint32_t i, uint32_t& first, uint32_t& last) {
    auto& r = slots[i];
    r.*P = last;
    r.*N = kNone;
    if (last != kNone) {
      slots[last].*N = i;
    } else {
      first = i;
    }
    last = i;
  }
};

}  // namespace exfilwatch
