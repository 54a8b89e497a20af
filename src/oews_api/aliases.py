"""Names people use that BLS titles don't: occupation common names and place nicknames.

Keys are plain lower-case phrases (matched after the same normalisation as the
question); values are BLS codes. Titles themselves are matched separately, so
only names that differ from every BLS title belong here.
"""

from __future__ import annotations

from typing import Final

OCCUPATION_ALIASES: Final[dict[str, str]] = {
    # health care
    "rn": "291141", "registered nurse": "291141", "nurse": "291141", "staff nurse": "291141", "travel nurse": "291141",
    "lpn": "292061", "lvn": "292061", "practical nurse": "292061", "vocational nurse": "292061",
    "cna": "311131", "nurse aide": "311131", "nursing aide": "311131", "nursing assistant": "311131",
    "np": "291171", "nurse practitioner": "291171", "crna": "291151", "nurse anesthetist": "291151",
    "pa": "291071", "physician assistant": "291071", "physician associate": "291071",
    "doctor": "291210", "physician": "291210", "md": "291210", "gp": "291215", "family doctor": "291215",
    "pediatrician": "291221", "psychiatrist": "291223", "surgeon": "291240", "anesthesiologist": "291211",
    "cardiologist": "291212", "dermatologist": "291213", "radiologist": "291224", "ob gyn": "291218", "obgyn": "291218",
    "obstetrician": "291218", "gynecologist": "291218", "ophthalmologist": "291241", "eye doctor": "291041",
    "dentist": "291021", "orthodontist": "291023", "dental hygienist": "291292", "hygienist": "291292",
    "dental assistant": "319091", "pharmacist": "291051", "pharmacy tech": "292052", "pharmacy technician": "292052",
    "rad tech": "292034", "radiology tech": "292034", "radiology technician": "292034", "radiologic tech": "292034",
    "xray tech": "292034", "x ray tech": "292034", "x ray technician": "292034", "sonographer": "292032",
    "ultrasound tech": "292032", "mri tech": "292035", "surgical tech": "292055", "vet": "291131",
    "veterinarian": "291131", "vet tech": "292056", "physical therapist": "291123", "pt": "291123",
    "physical therapy assistant": "312021", "occupational therapist": "291122", "ot": "291122",
    "speech therapist": "291127", "speech pathologist": "291127", "slp": "291127", "respiratory therapist": "291126",
    "emt": "292042", "paramedic": "292043", "medical assistant": "319092", "phlebotomist": "319097",
    "home health aide": "311120", "caregiver": "311120", "chiropractor": "291011", "optometrist": "291041",
    "dietitian": "291031", "nutritionist": "291031", "psychologist": "193033", "therapist": "211018",
    "counselor": "211018", "mental health counselor": "211018", "social worker": "211021", "medical coder": "292072",
    "lab tech": "292010", "massage therapist": "319011", "audiologist": "291181",
    # technology and office
    "software engineer": "151252", "software developer": "151252", "programmer": "151251", "coder": "151251",
    "developer": "151252", "swe": "151252", "web developer": "151254", "web designer": "151255",
    "data scientist": "152051", "data analyst": "152051", "it manager": "113021", "it director": "113021",
    "cio": "113021", "cto": "113021", "tech manager": "113021", "engineering manager": "119041",
    "sysadmin": "151244", "system administrator": "151244", "systems administrator": "151244",
    "network administrator": "151244", "network engineer": "151241", "dba": "151242",
    "database administrator": "151242", "security analyst": "151212", "cybersecurity analyst": "151212",
    "information security analyst": "151212", "help desk": "151232", "it support": "151232",
    "computer support": "151232", "qa engineer": "151253", "tester": "151253", "devops engineer": "151244",
    "ux designer": "151255", "business analyst": "131111", "management consultant": "131111", "consultant": "131111",
    "project manager": "131082", "accountant": "132011", "cpa": "132011", "auditor": "132011",
    "bookkeeper": "433031", "financial analyst": "132051", "financial advisor": "132052", "financial adviser": "132052",
    "hr specialist": "131071", "recruiter": "131071", "hr manager": "113121", "human resources manager": "113121",
    "marketing manager": "112021", "sales manager": "112022", "ceo": "111011", "chief executive": "111011",
    "executive": "111011", "general manager": "111021", "operations manager": "111021", "lawyer": "231011",
    "attorney": "231011", "paralegal": "232011", "secretary": "436014", "administrative assistant": "436014",
    "admin assistant": "436014", "executive assistant": "436011", "receptionist": "434171",
    "customer service rep": "434051", "csr": "434051", "call center": "434051", "bank teller": "433071",
    "teller": "433071", "loan officer": "132072", "insurance agent": "413021", "real estate agent": "419022",
    "realtor": "419022", "sales rep": "414012", "data entry": "439021", "mail carrier": "435052",
    "mailman": "435052", "postman": "435052", "clerk": "439061", "office clerk": "439061",
    # engineering and science
    "mechanical engineer": "172141", "civil engineer": "172051", "electrical engineer": "172071",
    "chemical engineer": "172041", "aerospace engineer": "172011", "industrial engineer": "172112",
    "biomedical engineer": "172031", "environmental engineer": "172081", "chemist": "192031", "economist": "193011",
    "statistician": "152041", "mathematician": "152021", "actuary": "152011",
    # education and public service
    "teacher": "252000", "schoolteacher": "252000", "high school teacher": "252031", "elementary school teacher": "252021", "elementary teacher": "252021",
    "kindergarten teacher": "252012", "preschool teacher": "252011", "middle school teacher": "252022",
    "special ed teacher": "252057", "teacher aide": "259045", "teaching assistant": "259045",
    "teacher assistant": "259045", "substitute teacher": "253031", "principal": "119032", "school principal": "119032",
    "librarian": "254022", "police officer": "333051", "police": "333051", "cop": "333051", "sheriff": "333051",
    "firefighter": "332011", "fireman": "332011", "correctional officer": "333012", "prison guard": "333012",
    "security guard": "339032", "daycare worker": "399011", "day care worker": "399011",
    "childcare worker": "399011", "child care worker": "399011", "nanny": "399011", "babysitter": "399011",
    "personal trainer": "399031", "fitness trainer": "399031", "hairdresser": "395012", "hair stylist": "395012",
    "hairstylist": "395012", "cosmetologist": "395012", "barber": "395011", "manicurist": "395092",
    # trades, transport, service
    "electrician": "472111", "plumber": "472152", "pipefitter": "472152", "carpenter": "472031", "welder": "514121",
    "hvac": "499021", "hvac tech": "499021", "hvac technician": "499021", "roofer": "472181", "painter": "472141",
    "mason": "472021", "bricklayer": "472021", "construction worker": "472061", "laborer": "472061",
    "elevator mechanic": "474021", "elevator installer": "474021", "elevator repairer": "474021",
    "machinist": "514041", "mechanic": "493023", "auto mechanic": "493023", "car mechanic": "493023",
    "automotive mechanic": "493023", "auto tech": "493023", "diesel mechanic": "493031",
    "aircraft mechanic": "493011", "maintenance worker": "499071", "handyman": "499071",
    "lineman": "499051", "line worker": "499051", "truck driver": "533032", "trucker": "533032",
    "semi driver": "533032", "delivery driver": "533033", "bus driver": "533052", "school bus driver": "533051",
    "taxi driver": "533054", "uber driver": "533054", "forklift driver": "537051", "forklift operator": "537051",
    "warehouse worker": "537062", "mover": "537062", "stocker": "537065", "pilot": "532011",
    "airline pilot": "532011", "flight attendant": "532031", "cashier": "412011", "retail worker": "412031",
    "sales associate": "412031", "salesperson": "412031", "barista": "353023", "bartender": "353011",
    "waiter": "353031", "waitress": "353031", "server": "353031", "food server": "353031", "host": "359031",
    "hostess": "359031", "dishwasher": "359021", "cook": "352014", "line cook": "352014", "chef": "351011",
    "fast food worker": "353023", "food prep worker": "352021", "janitor": "372011", "custodian": "372011",
    "housekeeper": "372012", "maid": "372012", "cleaner": "372012", "landscaper": "373011", "groundskeeper": "373011",
    "farmworker": "452092", "farm worker": "452092", "journalist": "273023", "reporter": "273023",
    "photographer": "274021", "graphic designer": "271024", "interpreter": "273091", "translator": "273091",
    "writer": "273043", "author": "273043", "editor": "273041", "actor": "272011", "musician": "272042",
    "zookeeper": "392021", "animal caretaker": "392021", "dog groomer": "392021", "pet groomer": "392021",
}

# Place nicknames -> BLS area code (metros, and DC which BLS publishes as a state).
AREA_ALIASES: Final[dict[str, str]] = {
    "nyc": "0035620", "new york city": "0035620", "manhattan": "0035620", "brooklyn": "0035620",
    "la": "0031080", "los angeles": "0031080", "sf": "0041860", "san fran": "0041860", "bay area": "0041860",
    "silicon valley": "0041940", "dfw": "0019100", "dallas fort worth": "0019100", "philly": "0037980",
    "vegas": "0029820", "nola": "0035380", "atl": "0012060", "chi town": "0016980", "twin cities": "0033460",
    "dc": "1100000", "washington dc": "1100000", "washington d c": "1100000", "district of columbia": "1100000",
    "dc metro": "0047900", "dc area": "0047900", "honolulu": "0046520",
    "motor city": "0019820", "socal": "0031080", "miami": "0033100", "boise": "0014260",
}

STATE_ABBREVIATIONS: Final[dict[str, str]] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California", "CO": "Colorado",
    "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York", "NC": "North Carolina",
    "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island",
    "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "PR": "Puerto Rico", "GU": "Guam", "VI": "Virgin Islands",
}

# Phrases meaning the whole country (BLS area 0000000).
NATIONAL_PHRASES: Final[tuple[str, ...]] = (
    "nationally", "national", "nationwide", "national average", "national level", "usa", "united states",
    "the united states", "america", "the country", "across the country", "in the country", "countrywide",
    "the nation", "the us", "in us", "us wide", "us national", "entire us", "whole country", "all states",
)

# Single-word city names that are also ordinary words: a place only after "in", "for", ...
COMMON_WORD_CITIES: Final[frozenset[str]] = frozenset(
    "reading mobile bend billings midland victoria sherman logan jackson florence columbia madison lawrence monroe "
    "warren salem dover hammond normal lima rome athens albany sumter enterprise lafayette lebanon springfield "
    "burlington charleston columbus decatur jacksonville kingston manchester portland richmond rochester wilmington".split()
)
