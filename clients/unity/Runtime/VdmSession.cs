using System;

namespace Vdm.Client
{
    /// <summary>
    /// A signed-in player's tokens and when they expire. Games keep it (see
    /// <see cref="VdmClient.SessionChanged"/>) to skip signing in again on
    /// the next start: a refresh token lasts 30 days by default.
    /// </summary>
    public sealed class VdmSession
    {
        /// <summary>Creates a session from stored tokens.</summary>
        public VdmSession(long playerId, string sessionToken, DateTime expiresAtUtc, string refreshToken, DateTime refreshExpiresAtUtc)
            : this(playerId, sessionToken, expiresAtUtc, refreshToken, refreshExpiresAtUtc, null)
        {
        }

        /// <summary>Creates a session from stored tokens, with when the session token was issued.</summary>
        public VdmSession(long playerId, string sessionToken, DateTime expiresAtUtc, string refreshToken, DateTime refreshExpiresAtUtc, DateTime? issuedAtUtc)
        {
            IssuedAtUtc = issuedAtUtc;
            PlayerId = playerId;
            SessionToken = sessionToken;
            ExpiresAtUtc = expiresAtUtc;
            RefreshToken = refreshToken;
            RefreshExpiresAtUtc = refreshExpiresAtUtc;
        }

        /// <summary>When the session token was issued (UTC), when known: a session refreshes at the latest halfway through its life.</summary>
        public DateTime? IssuedAtUtc { get; }

        /// <summary>The player.</summary>
        public long PlayerId { get; }

        /// <summary>The bearer token of every player call.</summary>
        public string SessionToken { get; }

        /// <summary>When the session token stops working (UTC).</summary>
        public DateTime ExpiresAtUtc { get; }

        /// <summary>The one-use token that gets the next pair.</summary>
        public string RefreshToken { get; }

        /// <summary>When the refresh token stops working (UTC).</summary>
        public DateTime RefreshExpiresAtUtc { get; }

        /// <summary>Whether the session token has expired at <paramref name="nowUtc"/>.</summary>
        public bool IsExpired(DateTime nowUtc)
        {
            return nowUtc >= ExpiresAtUtc;
        }

        internal static VdmSession From(TokenPair pair, DateTime nowUtc)
        {
            return new VdmSession(pair.PlayerId, pair.SessionToken, nowUtc.AddSeconds(pair.ExpiresIn),
                pair.RefreshToken, nowUtc.AddSeconds(pair.RefreshExpiresIn), nowUtc);
        }
    }
}
