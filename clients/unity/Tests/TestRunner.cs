using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Reflection;
using System.Threading.Tasks;

namespace Vdm.Client.Tests
{
    /// <summary>Marks a test: a public async method without parameters.</summary>
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class LiveTestAttribute : Attribute
    {
    }

    /// <summary>A failed expectation.</summary>
    public sealed class CheckFailed : Exception
    {
        /// <summary>Creates the failure.</summary>
        public CheckFailed(string message) : base(message)
        {
        }
    }

    /// <summary>Assertions, as few as the tests need.</summary>
    public static class Check
    {
        /// <summary>Fails unless <paramref name="condition"/> holds.</summary>
        public static void That(bool condition, string what)
        {
            if (!condition) throw new CheckFailed(what);
        }

        /// <summary>Fails unless the two are equal.</summary>
        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
            {
                throw new CheckFailed(string.Format("{0}: expected {1}, got {2}", what, expected, actual));
            }
        }

        /// <summary>Runs <paramref name="action"/> and returns the exception of type <typeparamref name="T"/> it throws.</summary>
        public static async Task<T> Throws<T>(Func<Task> action, string what) where T : Exception
        {
            try
            {
                await action();
            }
            catch (T e)
            {
                return e;
            }
            catch (Exception e)
            {
                throw new CheckFailed(string.Format("{0}: expected {1}, got {2}: {3}", what, typeof(T).Name, e.GetType().Name, e.Message));
            }
            throw new CheckFailed(string.Format("{0}: expected {1}, nothing was thrown", what, typeof(T).Name));
        }

        /// <summary>Waits until <paramref name="condition"/> holds, polling; fails after <paramref name="seconds"/>.</summary>
        public static async Task Eventually(Func<bool> condition, string what, double seconds = 10)
        {
            var until = DateTime.UtcNow.AddSeconds(seconds);
            while (!condition())
            {
                if (DateTime.UtcNow > until) throw new CheckFailed("timed out waiting: " + what);
                await Task.Delay(25);
            }
        }
    }

    /// <summary>
    /// Runs every [LiveTest] of this assembly against the servers named by
    /// VDM_URL (and VDM_LIMITED_URL for the rate-limit tests), one at a
    /// time, and prints the standard `N passed, N failed` line. Plain Mono
    /// runs it (clients/unity/check.sh); no test framework is needed.
    /// </summary>
    public static class TestRunner
    {
        /// <summary>Entry point: the exit code is the number of failures (capped at 1).</summary>
        public static int Main(string[] args)
        {
            var filter = args.Length > 0 ? args[0] : null;
            var tests = typeof(TestRunner).Assembly.GetTypes()
                .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance))
                .Where(m => m.GetCustomAttribute<LiveTestAttribute>() != null)
                .Where(m => filter == null || (m.DeclaringType.Name + "." + m.Name).IndexOf(filter, StringComparison.OrdinalIgnoreCase) >= 0)
                .OrderBy(m => m.DeclaringType.Name).ThenBy(m => m.Name)
                .ToList();
            int passed = 0, failed = 0;
            var clock = Stopwatch.StartNew();
            foreach (var test in tests)
            {
                var name = test.DeclaringType.Name + "." + test.Name;
                var watch = Stopwatch.StartNew();
                try
                {
                    var instance = Activator.CreateInstance(test.DeclaringType);
                    var task = (Task)test.Invoke(instance, null);
                    if (!task.Wait(TimeSpan.FromSeconds(60))) throw new TimeoutException("the test took over 60 s");
                    (instance as IDisposable)?.Dispose();
                    passed++;
                    Console.WriteLine("ok   {0} ({1} ms)", name, watch.ElapsedMilliseconds);
                }
                catch (Exception e)
                {
                    failed++;
                    var cause = Unwrap(e);
                    Console.WriteLine("FAIL {0} ({1} ms): {2}: {3}", name, watch.ElapsedMilliseconds, cause.GetType().Name, cause.Message);
                    if (!(cause is CheckFailed)) Console.WriteLine(cause.StackTrace);
                }
            }
            Console.WriteLine("{0} passed, {1} failed ({2:0.0} s)", passed, failed, clock.Elapsed.TotalSeconds);
            return failed == 0 && tests.Count > 0 ? 0 : 1;
        }

        private static Exception Unwrap(Exception e)
        {
            while ((e is AggregateException || e is TargetInvocationException) && e.InnerException != null) e = e.InnerException;
            return e;
        }
    }
}
