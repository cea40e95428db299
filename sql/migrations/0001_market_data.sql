-- Market data: the contract tables other tools read.
-- Prices are split-adjusted as delivered by the source; `session` is the NYSE session date.

-- Tickers compare bytewise (COLLATE "C"): faster keys, and the order traders expect.
CREATE TABLE market_bars (
    ticker   text COLLATE "C" NOT NULL,
    session  date             NOT NULL,
    open     double precision NOT NULL CHECK (open > 0),
    high     double precision NOT NULL CHECK (high > 0),
    low      double precision NOT NULL CHECK (low > 0),
    close    double precision NOT NULL CHECK (close > 0),
    volume   bigint           NOT NULL CHECK (volume >= 0),
    PRIMARY KEY (ticker, session)
);
-- Partition rewrites delete by session: this index makes that a range scan.
CREATE INDEX market_bars_session_idx ON market_bars (session);

CREATE TABLE index_bars (
    ticker   text COLLATE "C" NOT NULL,
    session  date             NOT NULL,
    open     double precision NOT NULL CHECK (open > 0),
    high     double precision NOT NULL CHECK (high > 0),
    low      double precision NOT NULL CHECK (low > 0),
    close    double precision NOT NULL CHECK (close > 0),
    volume   bigint           NOT NULL CHECK (volume >= 0),
    PRIMARY KEY (ticker, session)
);
CREATE INDEX index_bars_session_idx ON index_bars (session);

-- The latest known reference per ticker; `as_of` is the session it describes.
CREATE TABLE tickers (
    ticker             text COLLATE "C" PRIMARY KEY,
    name               text,
    sector             text,
    industry           text,
    sector_etf         text NOT NULL,
    market_cap         double precision,
    shares_outstanding double precision,
    source             text NOT NULL,
    as_of              date NOT NULL
);

-- Rows a source delivered that failed validation, with the reason; never silently dropped.
-- A value the source sent that was not a number is NULL here; the reason says which.
CREATE TABLE quarantined_bars (
    dataset  text NOT NULL CHECK (dataset IN ('market_bars', 'index_bars')),
    ticker   text,
    session  date NOT NULL,
    open     double precision,
    high     double precision,
    low      double precision,
    close    double precision,
    volume   double precision,
    reason   text NOT NULL,
    source   text NOT NULL
);
CREATE INDEX quarantined_bars_session_idx ON quarantined_bars (dataset, session);
