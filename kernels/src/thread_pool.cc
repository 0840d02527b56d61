#include "thread_pool.h"

#include <algorithm>
#include <cstdint>

namespace tfc {

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < std::max(1, threads); ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  start_.notify_all();
  for (auto& worker : workers_) worker.join();
}

namespace {
void Chunk(int count, int chunks, int index, int* begin, int* end) {
  *begin = static_cast<int>(static_cast<int64_t>(count) * index / chunks);
  *end = static_cast<int>(static_cast<int64_t>(count) * (index + 1) / chunks);
}
}  // namespace

void ThreadPool::ParallelFor(int count, const std::function<void(int, int)>& fn) {
  const int chunks = std::min(count, threads());
  if (chunks <= 1) {
    if (count > 0) fn(0, count);
    return;
  }
  std::lock_guard<std::mutex> run(run_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = &fn;
    count_ = count;
    chunks_ = chunks;
    pending_ = chunks - 1;
    ++generation_;
  }
  start_.notify_all();
  int begin = 0, end = 0;
  Chunk(count, chunks, 0, &begin, &end);
  fn(begin, end);
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return pending_ == 0; });
  task_ = nullptr;
}

void ThreadPool::WorkerLoop(int index) {
  long seen = 0;
  while (true) {
    const std::function<void(int, int)>* task = nullptr;
    int count = 0, chunks = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      task = task_;
      count = count_;
      chunks = chunks_;
    }
    if (index < chunks) {
      int begin = 0, end = 0;
      Chunk(count, chunks, index, &begin, &end);
      (*task)(begin, end);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }
}

}  // namespace tfc
