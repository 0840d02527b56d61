// A small fixed-size thread pool for splitting one layer across cores.
#ifndef TFCOMPRESS_KERNELS_THREAD_POOL_H_
#define TFCOMPRESS_KERNELS_THREAD_POOL_H_

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tfc {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on contiguous chunks of [0, count), at most one chunk
  // per thread, the calling thread included; returns when all are done. Safe to
  // call from several threads at once (one delegate shared by two interpreters):
  // the calls then take turns.
  void ParallelFor(int count, const std::function<void(int, int)>& fn);

 private:
  void WorkerLoop(int index);

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // held for a whole ParallelFor: one task at a time
  std::mutex mutex_;
  std::condition_variable start_;
  std::condition_variable done_;
  const std::function<void(int, int)>* task_ = nullptr;
  int count_ = 0;
  int chunks_ = 0;
  int pending_ = 0;
  long generation_ = 0;
  bool stop_ = false;
};

}  // namespace tfc

#endif  // TFCOMPRESS_KERNELS_THREAD_POOL_H_
