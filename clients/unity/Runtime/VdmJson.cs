using Newtonsoft.Json;

namespace Vdm.Client
{
    /// <summary>
    /// The JSON settings every SDK call uses.
    /// </summary>
    public static class VdmJson
    {
        /// <summary>
        /// Leaves null fields out (the server treats an absent optional field
        /// as unset, and some bodies refuse unknown or null fields), ignores
        /// fields this SDK does not know (a newer server may add some), and
        /// keeps RFC 3339 strings as strings: Newtonsoft would otherwise turn
        /// them into DateTime and re-format them in the local culture.
        /// </summary>
        public static readonly JsonSerializerSettings Settings = new JsonSerializerSettings
        {
            NullValueHandling = NullValueHandling.Ignore,
            MissingMemberHandling = MissingMemberHandling.Ignore,
            DateParseHandling = DateParseHandling.None,
            FloatParseHandling = FloatParseHandling.Double,
        };

        /// <summary>A serializer with <see cref="Settings"/>.</summary>
        public static readonly JsonSerializer Serializer = JsonSerializer.Create(Settings);

        /// <summary>Serializes with <see cref="Settings"/>.</summary>
        public static string Serialize(object value)
        {
            return JsonConvert.SerializeObject(value, Formatting.None, Settings);
        }

        /// <summary>Deserializes with <see cref="Settings"/>.</summary>
        public static T Deserialize<T>(string json)
        {
            return JsonConvert.DeserializeObject<T>(json, Settings);
        }
    }
}
